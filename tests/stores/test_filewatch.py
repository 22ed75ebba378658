"""``JobStore.watch``: an SQLite file store reports writes (inotify) so that an idle scheduler
does not poll; where it cannot be sure to see every write, it says so (``None``)."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from nbsched.stores import _filewatch
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore

from .helpers import make_job

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux only")


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait_more_than(self, n: int, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.count > n, 10), f"no report of {what}"


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sub dir' / 'jobs.db'}"  # (a space: mountinfo escapes)


def test_writes_by_another_store_object_are_reported(sqlite_file: str) -> None:
    watched, writer = SQLAlchemyJobStore(sqlite_file), SQLAlchemyJobStore(sqlite_file)
    watched.open()
    calls = Calls()
    stop = watched.watch(calls)
    assert stop is not None
    try:
        writer.add_job(make_job("a"))
        calls.wait_more_than(0, "an added job")
        seen = calls.count
        writer.update_job(replace(make_job("a"), paused=True))
        calls.wait_more_than(seen, "a paused job")
        seen = calls.count
        writer.remove_job("a")
        calls.wait_more_than(seen, "a removed job")
    finally:
        stop()
        writer.close()
        watched.close()
    assert not [t for t in threading.enumerate() if t.name == "nbsched-store-watch"]


def test_a_symlinked_database_is_watched_where_it_really_is(tmp_path: Path) -> None:
    real = tmp_path / "real" / "jobs.db"
    creator = SQLAlchemyJobStore(f"sqlite:///{real}")
    creator.open()  # creates it
    creator.close()
    link = tmp_path / "elsewhere" / "jobs.db"
    link.parent.mkdir()
    link.symlink_to(real)
    url = f"sqlite:///{link}"
    watched, writer = SQLAlchemyJobStore(url), SQLAlchemyJobStore(url)
    calls = Calls()
    stop = watched.watch(calls)
    assert stop is not None
    try:
        writer.add_job(make_job("a"))  # SQLite writes next to the target, not the link
        calls.wait_more_than(0, "a job added through the link")
    finally:
        stop()
        writer.close()


def test_stores_that_cannot_be_watched_say_so(
    sqlite_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SQLAlchemyJobStore("sqlite://").watch(lambda: None) is None  # in memory
    monkeypatch.setattr(_filewatch, "is_local_fs", lambda path: False)  # say, over NFS
    store = SQLAlchemyJobStore(sqlite_file)
    store.open()
    try:
        assert store.watch(lambda: None) is None
    finally:
        store.close()


MOUNTS = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime - ext4 /dev/vda rw
30 27 0:40 / /home/ann/nfs\\040share rw - nfs4 server:/export rw
31 30 0:41 / /home/ann/nfs\\040share/scratch rw - tmpfs tmpfs rw
40 27 0:50 / /mnt/sshfs rw - fuse.sshfs ann@host:/ rw
"""


@pytest.mark.parametrize(
    ("path", "local"),
    [
        ("/home/ann/jobs.db", True),  # ext4
        ("/home/ann/nfs share/jobs.db", False),  # nfs4 (escaped space)
        ("/home/ann/nfs share/scratch/jobs.db", True),  # tmpfs mounted inside it: the deepest
        ("/home/ann/nfs shared/jobs.db", True),  # a sibling name, not inside the nfs mount
        ("/mnt/sshfs/jobs.db", False),  # fuse: unknown, so polled
    ],
)
def test_only_local_file_systems_are_trusted(path: str, local: bool, tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTS)
    assert _filewatch.is_local_fs(path, str(table)) is local
    assert _filewatch.is_local_fs(path, str(tmp_path / "missing")) is False
