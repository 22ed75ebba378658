"""Jobs and runs survive a restart of the process that scheduled them (real SQLite file)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from nbsched import RunStatus, Scheduler
from nbsched._engine import sync as sync_module
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for

from .test_scheduler import record_call, runs_of


def test_jobs_survive_a_restart(db_url: str, clock: FakeClock) -> None:
    s = Scheduler(db_url, clock=clock, timezone="Europe/Paris")
    s.start()
    s.add_job(record_call, "every weekday at 09:30", name="morning", retries=2, timeout=60)
    s.add_job("json:dumps", "every 5m", name="dump", args=([1, 2],), kwargs={"indent": 1})
    s.add_job(record_call, "every 1h", name="paused", paused=True)
    before = {j.name: j for j in s.get_jobs()}
    s.shutdown()

    s2 = Scheduler(db_url, clock=clock, timezone="Europe/Paris")
    s2.start()
    try:
        after = {j.name: j for j in s2.get_jobs()}
        assert after == before
        assert after["morning"].schedule == "At 09:30, Monday through Friday"
        clock.advance(300)
        (run,) = runs_of(s2, "dump", 1)
        assert run.status is RunStatus.succeeded
    finally:
        s2.shutdown()


def test_overdue_jobs_are_caught_up_per_policy_after_restart(db_url: str, clock: FakeClock) -> None:
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    s.start()
    t0 = clock.time()
    s.add_job(record_call, "every 10s", name="coalesced")
    s.add_job(record_call, "every 10s", name="strict", misfire_grace_time=5)
    s.shutdown()
    clock.advance(3600)  # the process was gone for an hour

    s2 = Scheduler(db_url, clock=clock, timezone="UTC")
    s2.start()
    try:
        ran = runs_of(s2, "coalesced", 2)
        assert sorted(r.status.value for r in ran) == ["missed", "succeeded"]
        (missed, *rest) = runs_of(s2, "strict", 2)
        assert {missed.status, *(r.status for r in rest)} == {RunStatus.missed}
        for name in ("coalesced", "strict"):
            assert s2.get_job(name).next_run_time.timestamp() == t0 + 3610
    finally:
        s2.shutdown()


def test_runs_left_running_by_a_dead_process_become_crashed(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        from nbsched import Scheduler
        s = Scheduler({db_url!r}, timezone="UTC")
        s.start()
        s.add_job("time:sleep", "every 1s", name="sleepy", args=(60,))
        while not [r for r in s.store.get_runs("sleepy") if r.status.value == "running"]:
            time.sleep(0.05)
        os._exit(0)   # dies with the run in flight, without any cleanup
    """))
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    # A clock that stands still: the restarted scheduler must not fire the 60 s job again
    # (an abandoned sleeping thread would outlive the test).
    s = Scheduler(db_url, timezone="UTC", clock=FakeClock(time.time()))
    s.start()
    try:
        run = s.get_runs("sleepy")[-1]
        assert run.status is RunStatus.crashed and "ended before" in run.error
    finally:
        s.shutdown()


def test_a_locked_store_makes_the_scheduler_unhealthy_then_it_recovers(db_url: str) -> None:
    """Never a zombie: a store fault shows in status() and clears by itself (real clock)."""
    s = Scheduler(db_url, timezone="UTC")
    s.store.busy_timeout = 0.2  # type: ignore[attr-defined]
    s.start()
    try:
        s.add_job(record_call, "every 1s", name="tick")
        path = db_url.removeprefix("sqlite:///")
        lock = sqlite3.connect(path, timeout=0)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            wait_for(lambda: not s.status()["healthy"], 15, "the fault to show")
            st = s.status()
            assert st["running"] and "locked" in st["error"]
        finally:
            lock.rollback()
            lock.close()
        wait_for(lambda: s.status()["healthy"], 15, "recovery")
        n = len(s.get_runs("tick", limit=1000))
        wait_for(lambda: len(s.get_runs("tick", limit=1000)) > n, 15, "runs after recovery")
        statuses = {r.status for r in s.get_runs("tick", limit=1000)}
        # jobs kept running meanwhile: nothing failed or was missed (the newest may still run)
        assert statuses <= {RunStatus.succeeded, RunStatus.running}, statuses
    finally:
        s.shutdown()


def test_a_job_whose_stored_state_is_unreadable_is_kept_but_never_fired(
    db_url: str, clock: FakeClock
) -> None:
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    s.start()
    s.add_job(record_call, "every 10s", name="odd")
    s.shutdown()
    with s.store.engine.begin() as conn:  # type: ignore[attr-defined]
        table = s.store.tables.jobs  # type: ignore[attr-defined]
        conn.execute(table.update().values(trigger='{"version": 99, "type": "from-the-future"}'))
    s2 = Scheduler(db_url, clock=clock, timezone="UTC")
    s2.start()
    try:
        job = s2.get_job("odd")
        assert "unreadable schedule" in job.schedule and job.next_run_time is None
        clock.advance(60)
        assert s2.get_runs("odd") == []
        s2.remove_job("odd")  # and it can be removed
    finally:
        s2.shutdown()


def _no_look_due_or_under_way(s: Scheduler, clock: FakeClock) -> bool:
    """No look at the store is due at the fake clock's time, and none is under way (a look
    sets its successor's time when it begins, and holds ``_looking`` until it has applied
    what it found)."""
    sync = s._engine.sync
    if sync.next_watch <= clock.time() or not sync._looking.acquire(blocking=False):
        return False
    sync._looking.release()
    return True


def _looks(s: Scheduler, clock: FakeClock, n: int) -> None:
    """Let the scheduler look at the store ``n`` more times (the fake clock passes its watch
    interval, and each look is waited out)."""
    for _ in range(n + 1):
        clock.advance(s._engine.sync.watch or 1.0)
        wait_for(lambda: _no_look_due_or_under_way(s, clock), 10, "a look at the store")


def _seen_within(s: Scheduler, clock: FakeClock, what: str, pred: Any, fake_s: float) -> None:
    """``pred()`` holds after at most ``fake_s`` seconds of fake time, passed in steps of
    WATCH_MIN_GAP, each step waited out (really) until the looks it made due have ended."""
    step = sync_module.WATCH_MIN_GAP
    for _ in range(round(fake_s / step)):
        clock.advance(step)
        wait_for(lambda: _no_look_due_or_under_way(s, clock), 10, "a look at the store")
        if pred():
            return
    raise AssertionError(f"not seen within {fake_s} s of fake time: {what}")


def _pause_elsewhere(other: SQLAlchemyJobStore, name: str, s: Scheduler, clock: FakeClock) -> None:
    """Pause ``name`` through another store object (as another process would), and wait
    (really, with a bound) until the store has reported the write to ``s``."""
    job = other.get_job(name)
    assert job is not None
    other.update_job(replace(job, paused=True, next_run_time=None))
    wait_for(
        lambda: s._engine.sync.next_watch <= clock.time() + sync_module.WATCH_MIN_GAP,
        10,
        "the store to report the write",
    )


def test_a_scheduler_does_not_reload_the_jobs_it_wrote_itself(db_url: str, clock: FakeClock) -> None:
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    s.start()
    try:
        wait_for(lambda: s._engine.sync.loaded, 10, "the first load")
        reads: list[int] = []
        get_jobs = s.store.get_jobs
        s.store.get_jobs = lambda *a, **k: reads.append(1) or get_jobs(*a, **k)  # type: ignore[method-assign]
        for look in range(4):
            for i in range(3):
                s.add_job(record_call, "every 1h", name=f"mine-{look}-{i}")
            s.pause_job(f"mine-{look}-0")
            s.remove_job(f"mine-{look}-1")
            _looks(s, clock, 1)
        _looks(s, clock, 2)
        # Not once per look, as it was; not even once (a write of ours is counted before it
        # commits: a look racing with it cannot take it for another process's).
        assert reads == []
    finally:
        s.shutdown()


def test_a_look_right_after_a_write_of_ours_commits_does_not_reload(
    db_url: str, clock: FakeClock
) -> None:
    # The store's watch makes looks come soon after writes: one may come between the commit
    # of a job write of ours and the end of the call that made it.
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    s.start()
    try:
        wait_for(lambda: s._engine.sync.loaded, 10, "the first load")
        _looks(s, clock, 1)
        reads: list[int] = []
        get_jobs, add_job = s.store.get_jobs, s.store.add_job
        s.store.get_jobs = lambda *a, **k: reads.append(1) or get_jobs(*a, **k)  # type: ignore[method-assign]

        def add_then_look(job: Any, **kwargs: Any) -> None:
            add_job(job, **kwargs)  # committed: the marker moved
            s._engine.sync.check()  # a look at that very moment

        s.store.add_job = add_then_look  # type: ignore[method-assign]
        s.add_job(record_call, "every 1h", name="mine")
        _looks(s, clock, 1)
        assert reads == []
        assert [j.name for j in s.get_jobs()] == ["mine"]
    finally:
        s.shutdown()


def test_looks_from_two_threads_at_once_keep_the_counts_right(
    db_url: str, clock: FakeClock
) -> None:
    """A look happens on the loop thread and on the caller's (``refresh_from_store``): two
    at once must not both take the same writes of ours off the count (a negative count
    makes later writes of ours look like another process's: full reloads)."""
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    s.start()
    try:
        sync = s._engine.sync
        wait_for(lambda: sync.loaded, 10, "the first load")
        _looks(s, clock, 1)
        reads: list[int] = []
        get_jobs, change_marker = s.store.get_jobs, s.store.change_marker
        s.store.get_jobs = lambda *a, **k: reads.append(1) or get_jobs(*a, **k)  # type: ignore[method-assign]
        meet = threading.Barrier(2, timeout=0.5)

        class Racing(int):
            """A marker whose comparison with the last one makes two looks meet: both have
            read the counts before either changes them, the moment they race. (With one
            look at a time the first gives up waiting for the second, which waits for it
            to finish; the barrier is then broken for the second.)"""

            def __sub__(self, other: int) -> int:
                with contextlib.suppress(threading.BrokenBarrierError):
                    meet.wait()
                return int(self) - int(other)

        s.store.change_marker = lambda: Racing(change_marker())  # type: ignore[method-assign,assignment]
        for round_ in range(3):
            s.add_job(record_call, "every 1h", name=f"mine-{round_}")
            meet.reset()
            lookers = [threading.Thread(target=sync.check) for _ in range(2)]
            for looker in lookers:
                looker.start()
            for looker in lookers:
                looker.join(10)
            assert sync.own_changes == 0
        s.store.change_marker = change_marker  # type: ignore[method-assign]
        s.add_job(record_call, "every 1h", name="mine-last")
        _looks(s, clock, 2)
        clock.advance(sync_module.BEHIND_FOR)  # long enough for a mismatch to force a reload
        _looks(s, clock, 2)
        assert reads == []
        assert sync.own_changes == 0
    finally:
        s.shutdown()


def test_a_job_another_process_wrote_meanwhile_is_still_picked_up(
    db_url: str, clock: FakeClock
) -> None:
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    other = Scheduler(db_url, clock=clock, timezone="UTC")  # (not started: it only writes)
    s.start()
    try:
        other.add_job(record_call, "every 1h", name="theirs")
        s.add_job(record_call, "every 1h", name="mine")  # one of ours moves the marker too
        _looks(s, clock, 2)
        assert {j.name for j in s.get_jobs()} == {"mine", "theirs"}
    finally:
        s.shutdown()
        other.shutdown()


@pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux only")
def test_a_write_by_another_process_is_noticed_without_polling(
    db_url: str, clock: FakeClock
) -> None:
    # The store reports writes to its file: the scheduler does not look every second, it
    # looks within _WATCH_MIN_GAP of a write (an idle one then never wakes up to poll).
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    other = SQLAlchemyJobStore(db_url)
    s.start()
    try:
        assert s._engine.sync.watch == sync_module.WATCH_FALLBACK  # no polling every second
        s.add_job(record_call, "every 1h", name="j")
        _looks(s, clock, 1)  # our own write has been looked at
        _pause_elsewhere(other, "j", s, clock)
        _seen_within(
            s, clock, "the pause made by another process", lambda: s.get_job("j").paused,
            sync_module.WATCH_INTERVAL,
        )
    finally:
        s.shutdown()
        other.close()


def test_another_process_writing_right_after_us_is_seen_soon(
    db_url: str, clock: FakeClock
) -> None:
    # Our write and another process's come before we look: the counts cannot tell them apart
    # (one of them is ours), so that look reloads nothing; the next comes a second later,
    # not at the watched store's regular look minutes away.
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    other = SQLAlchemyJobStore(db_url)
    s.start()
    try:
        _looks(s, clock, 1)
        s.add_job(record_call, "every 1h", name="j")
        _pause_elsewhere(other, "j", s, clock)
        _seen_within(
            s, clock, "the pause made right after our add", lambda: s.get_job("j").paused,
            2 * sync_module.WATCH_INTERVAL,
        )
    finally:
        s.shutdown()
        other.close()


def test_a_store_that_cannot_watch_is_polled_every_second(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SQLAlchemyJobStore, "watch", lambda self, callback: None)
    s = Scheduler(db_url, clock=clock, timezone="UTC")
    other = Scheduler(db_url, clock=clock, timezone="UTC")  # (not started: it only writes)
    s.start()
    try:
        assert s._engine.sync.watch == sync_module.WATCH_INTERVAL == 1.0
        other.add_job(record_call, "every 1h", name="theirs")
        _looks(s, clock, 1)
        assert [j.name for j in s.get_jobs()] == ["theirs"]
    finally:
        s.shutdown()
        other.shutdown()


def test_a_removed_jobs_history_does_not_reappear_under_its_name(db_url: str) -> None:
    # A run that ended just before its job was removed had its record still queued in the
    # writer; written after the removal it would show up in a new job of the same name.
    s = Scheduler(db_url, timezone="UTC")
    s.start()
    try:
        for _ in range(20):  # the writer's timing varies: give the race many chances
            s.add_job(record_call, "every 1h", name="j")
            assert s.run_job("j").status is RunStatus.succeeded
            s.remove_job("j")
            s.add_job(record_call, "every 1h", name="j")
            assert s.get_runs("j", limit=10) == [], "the removed job's run came back"
            s.remove_job("j")
    finally:
        s.shutdown()
