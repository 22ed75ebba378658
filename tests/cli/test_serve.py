"""``nbsched serve`` as a supervisor sees it: a real ``python -m nbsched serve`` process on a
real store. It runs the store's jobs, exits 0 on SIGTERM or Ctrl-C after cancelling its runs
(leaving no process behind), and exits 1 with a one-line reason -- never hangs -- when its
store is gone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

from nbsched import Scheduler
from nbsched._cli.serve import EXIT_GUARD
from nbsched._engine.sync import IDLE_LEASES
from nbsched.jobs import RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.wait import wait_for

from .helpers import drop_database, program_env

pytestmark = pytest.mark.slow

JOBS = '''
import os, time

def tick(path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\\n")

def hold_exit(path):
    # a job that leaves a thread the interpreter waits for at exit, forever
    import threading
    threading.Thread(target=time.sleep, args=(600,), name="held", daemon=False).start()
    open(path, "w").close()

def linger(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(600)
'''

#: how long serve may take to end after a signal or after its store went away (seconds);
#: beyond it, something hangs
ENDS_WITHIN = EXIT_GUARD + 5


@pytest.fixture
def mods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the job module ``cli_serve_jobs``, importable here and in serve."""
    path = tmp_path / "mods"
    path.mkdir()
    (path / "cli_serve_jobs.py").write_text(JOBS)
    monkeypatch.syspath_prepend(str(path))
    return path


class Served:
    """A ``python -m nbsched serve`` process; stderr goes to a file (a pipe nobody reads
    could fill up and block it)."""

    def __init__(self, url: str, mods: Path, tmp_path: Path, *extra: str) -> None:
        self.log = tmp_path / "serve.log"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nbsched", "serve", "--db", url, *extra],
                stdout=subprocess.DEVNULL, stderr=err, env=program_env(mods),
            )

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float = ENDS_WITHIN) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve still running after {timeout} s:\n{self.stderr}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        s.kill()


def add_jobs(url: str, tmp_path: Path, *, linger: bool = False) -> tuple[Path, Path]:
    ticks, pidfile = tmp_path / "ticks.txt", tmp_path / "linger.pid"
    s = Scheduler(url)
    s.add_job("cli_serve_jobs:tick", "every 1s", name="tick", args=(str(ticks),))
    if linger:
        s.add_job(
            "cli_serve_jobs:linger", "every 1s", name="linger", args=(str(pidfile),),
            executor="process",
        )
    s.store.close()
    return ticks, pidfile


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_the_jobs_and_a_signal_stops_it_cleanly(
    signum: int, mods: Path, tmp_path: Path, served: list[Served]
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    ticks, pidfile = add_jobs(url, tmp_path, linger=True)
    serve = Served(url, mods, tmp_path)
    served.append(serve)
    wait_for(lambda: len(lines(ticks)) >= 2, timeout=30, what="two runs of 'tick'")
    wait_for(pidfile.exists, timeout=30, what="the process job 'linger' to start")
    family = psutil.Process(serve.proc.pid).children(recursive=True)
    lingering = psutil.Process(int(pidfile.read_text()))
    assert lingering in family

    serve.proc.send_signal(signum)
    assert serve.wait() == 0, serve.stderr
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family),
        timeout=10, what="every process serve started to end",
    )
    err = serve.stderr
    assert "run " in err and " of 'tick' started" in err and " of 'tick' succeeded" in err
    assert err.splitlines()[-1].endswith(f"stopped by {signal.Signals(signum).name}")

    store = SQLAlchemyJobStore(url)
    try:
        tick_runs = store.get_runs("tick", limit=100)
        linger_runs = store.get_runs("linger", limit=100)
    finally:
        store.close()
    assert sum(r.status is RunStatus.succeeded for r in tick_runs) >= 2
    # (its later fire times were skipped: max_instances=1)
    started = [r for r in linger_runs if r.status is not RunStatus.skipped]
    assert [r.status for r in started] == [RunStatus.cancelled]
    assert all(r.status is not RunStatus.running for r in tick_runs)


def test_serve_exits_1_when_its_sqlite_file_is_removed(
    mods: Path, tmp_path: Path, served: list[Served]
) -> None:
    store_dir = tmp_path / "store"
    url = f"sqlite:///{store_dir / 'jobs.db'}"
    ticks, _ = add_jobs(url, tmp_path)
    serve = Served(url, mods, tmp_path)
    served.append(serve)
    wait_for(lambda: len(lines(ticks)) >= 1, timeout=30, what="a run of 'tick'")
    for path in store_dir.iterdir():
        path.unlink()
    store_dir.rmdir()
    assert serve.wait() == 1
    assert serve.stderr.splitlines()[-1] == (
        f"nbsched serve: error: the store's database file {store_dir / 'jobs.db'} was removed "
        "or replaced"
    )


@pytest.mark.external_service
def test_serve_gives_up_when_its_postgresql_database_is_gone(
    mods: Path, tmp_path: Path, served: list[Served], pg_database: str
) -> None:
    ticks, _ = add_jobs(pg_database, tmp_path)
    serve = Served(pg_database, mods, tmp_path, "--give-up-after", "1")
    served.append(serve)
    wait_for(lambda: len(lines(ticks)) >= 1, timeout=30, what="a run of 'tick'")
    drop_database(pg_database.rsplit("/", 1)[1])
    assert serve.wait() == 1
    last = serve.stderr.splitlines()[-1]
    assert last.startswith(
        "nbsched serve: error: giving up: the scheduler has been failing for more than 1 s: "
    )
    assert pg_database.rsplit("/", 1)[1] in last  # (the store it gave up on)


def test_serve_gives_up_when_the_store_never_opens(
    mods: Path, tmp_path: Path, served: list[Served]
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    serve = Served(url, mods, tmp_path, "--give-up-after", "1")
    served.append(serve)
    assert serve.wait() == 1
    assert serve.stderr.splitlines()[-1].startswith(
        "nbsched serve: error: giving up: the store could not be opened for 1 s: Job store "
    )


def test_serve_exits_1_at_once_on_a_store_it_cannot_read(
    mods: Path, tmp_path: Path, served: list[Served]
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = SQLAlchemyJobStore(url)
    store.open()
    meta = store.tables.meta
    with store.engine.begin() as conn:  # as a newer nbsched would have left it
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=999))
    store.close()
    serve = Served(url, mods, tmp_path)  # (no --give-up-after: this is not worth waiting for)
    served.append(serve)
    assert serve.wait() == 1
    last = serve.stderr.splitlines()[-1]
    assert last.startswith("nbsched serve: error: Job store sqlite:///") and "version 999" in last


def test_serve_ends_even_when_the_interpreter_exit_hangs(
    mods: Path, tmp_path: Path, served: list[Served]
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    held = tmp_path / "held"
    s = Scheduler(url)
    s.add_job("cli_serve_jobs:hold_exit", "every 1h", name="hold", args=(str(held),))
    s.store.close()
    store = SQLAlchemyJobStore(url)  # due now: it runs as soon as serve starts
    job = store.get_job("hold")
    assert job is not None
    store.set_next_run_times([("hold", 0.0)])
    store.close()
    serve = Served(url, mods, tmp_path)
    served.append(serve)
    wait_for(held.exists, timeout=30, what="the job to leave its thread behind")
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.wait(EXIT_GUARD + 10) == 0
    assert "exiting took longer than" in serve.stderr


def test_serve_runs_dask_jobs_on_the_cluster_named_in_the_environment(
    tmp_path: Path, served: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")  # in the test extra: never skips
    from nbsched.executors.dask import DaskJobExecutor

    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        pids = tmp_path / "pids"
        s = Scheduler(url, executors={"dask": DaskJobExecutor(cluster.scheduler_address)})
        s.add_job("tests.cli._jobs:where", "every 1s", name="on-dask", executor="dask",
                  args=(str(pids),))
        s.store.close()
        monkeypatch.setenv("NBSCHED_DASK_ADDRESS", cluster.scheduler_address)
        serve = Served(url, tmp_path, tmp_path)
        served.append(serve)
        wait_for(lambda: len(lines(pids)) >= 2, timeout=60, what="two runs of the job")
        # not in serve itself (where it would run, on a thread, without the address)
        assert str(serve.proc.pid) not in lines(pids)
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.wait() == 0, serve.stderr
    finally:
        cluster.close()
    store = SQLAlchemyJobStore(url)
    try:
        runs = store.get_runs("on-dask", limit=100)
    finally:
        store.close()
    assert any(r.status is RunStatus.succeeded for r in runs)
    assert all(r.status is not RunStatus.running for r in runs)


def test_serve_takes_lease_seconds_from_the_servers_config(
    mods: Path, tmp_path: Path, served: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same ``NbschedConfig`` section the server extension reads: the lease serve beats
    with (``alive_until`` in the store) is the configured one, not the 30 s default."""
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        '{"NbschedConfig": {"lease_seconds": 300}}'
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    add_jobs(url, tmp_path)
    serve = Served(url, mods, tmp_path)
    served.append(serve)
    engine = create_engine(url)
    try:

        def lease_left() -> float | None:
            with engine.connect() as conn:
                until = conn.execute(text("SELECT alive_until FROM nbsched_schedulers")).scalar()
            return None if until is None else until - time.time()

        wait_for(lambda: lease_left() is not None, 30, "serve to beat")
        left = lease_left()
        # a busy scheduler's row lives a lease, an idle one's IDLE_LEASES of them
        idle = 300 * IDLE_LEASES
        assert left is not None and (200 < left <= 300 or idle - 100 < left <= idle)
    finally:
        engine.dispose()
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.wait() == 0, serve.stderr
