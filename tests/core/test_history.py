"""Reading run history never holds the caller while another process holds the store locked:
``last_runs`` answers in one query without writing first, and ``get_runs`` tries a pending
write once, not for seconds. Records not written yet come from memory."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nbsched import InvalidArgumentError, RunStatus, Scheduler, StoreError
from nbsched.scheduler import LastRuns
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.wait import wait_for


@pytest.fixture
def locked(tmp_path) -> Iterator[tuple[Scheduler, list[int], sqlite3.Connection]]:  # type: ignore[no-untyped-def]
    """A started scheduler on a real SQLite file with jobs ``a`` and ``b``, the write
    attempts its store gets from the test's thread counted (the writer thread retries in
    the background), and another connection that holds the write lock (released
    at the end)."""
    path = tmp_path / "jobs.db"
    store = SQLAlchemyJobStore(f"sqlite:///{path}", busy_timeout=0.1)
    s = Scheduler(store=store, timezone="UTC")
    s.start()
    s.add_job("json:dumps", "every 1h", name="a", args=([1],))
    s.add_job("json:dumps", "every 1h", name="b", args=([2],))
    writes: list[int] = []
    write_runs = store.write_runs

    def counted(runs: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            writes.append(len(runs))
        write_runs(runs)

    store.write_runs = counted  # type: ignore[method-assign]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing: our writes wait and fail
    try:
        yield s, writes, other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        s.shutdown()


def test_last_runs_answers_from_the_store_and_memory_without_writing(
    locked: tuple[Scheduler, list[int], sqlite3.Connection],
) -> None:
    s, writes, other = locked
    run = s.run_job("a", wait=10)
    assert s.status()["pending_writes"] >= 1  # the store is locked: not written
    before = len(writes)
    answer = s.last_runs()
    assert isinstance(answer, LastRuns) and not answer.partial and answer.problem is None
    assert answer == {"a": run, "b": None}
    assert s.last_runs(["b", "a", "b"]) == {"a": run, "b": None}
    assert len(writes) == before  # nothing was written (or tried) for the answer
    other.execute("ROLLBACK")
    wait_for(lambda: s.store.last_runs() == {"a": run}, 10, "the writer to catch up")
    assert s.last_runs() == {"a": run, "b": None}


def test_get_runs_tries_a_locked_store_once_and_merges_what_is_pending(
    locked: tuple[Scheduler, list[int], sqlite3.Connection],
) -> None:
    s, writes, _ = locked
    first = s.run_job("a", wait=10)
    second = s.run_job("a", wait=10)
    before = len(writes)
    assert s.get_runs("a") == [second, first]
    assert len(writes) <= before + 1  # one attempt, not retries for seconds
    assert s.get_runs() == [second, first]
    assert s.get_runs("b") == []


def test_a_store_that_cannot_be_read_gives_a_partial_answer(
    locked: tuple[Scheduler, list[int], sqlite3.Connection],
) -> None:
    s, _, _ = locked
    run = s.run_job("b", wait=10)

    def down(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise StoreError("Job store sqlite:///jobs.db: last_runs failed: database is locked")

    s.store.last_runs = down  # type: ignore[method-assign]
    answer = s.last_runs()
    assert answer.partial and "database is locked" in (answer.problem or "")
    assert answer == {"a": None, "b": run}  # what is in memory, all the same


def test_last_runs_of_other_owners_jobs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    theirs = Scheduler(url, owner="other.ipynb", timezone="UTC")
    mine = Scheduler(url, owner="mine.ipynb", timezone="UTC")
    theirs.start()
    mine.start()
    try:
        theirs.add_job("json:dumps", "every 1h", name="t", args=([1],))
        mine.add_job("json:dumps", "every 1h", name="m", args=([1],))
        run = theirs.run_job("t", wait=10)
        theirs.get_runs()  # written
        assert mine.last_runs() == {"m": None}
        everyone = [j.name for j in mine.get_jobs(all_owners=True)]
        assert mine.last_runs(everyone) == {"m": None, "t": run}
        assert run.status is RunStatus.succeeded
    finally:
        mine.shutdown()
        theirs.shutdown()


@pytest.mark.parametrize("bad", ["a", [1]])
def test_last_runs_refuses_what_is_not_a_list_of_names(sched: Scheduler, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="names must be"):
        sched.last_runs(bad)
