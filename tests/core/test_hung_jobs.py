"""A thread job whose body hangs past its timeout: each such run keeps its thread (threads
cannot be killed), so after a few the scheduler stops firing the job and says why."""

from __future__ import annotations

import threading

from nbsched import RunStatus, Scheduler
from nbsched._engine.loop import MAX_ABANDONED
from nbsched.events import JobPaused
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


def _threads() -> int:
    return sum(
        t.name.startswith("nbsched-thread-") and t.name[15:].isdigit()
        for t in threading.enumerate()
    )


def test_a_job_whose_runs_keep_hanging_is_paused_with_the_reason(clock: FakeClock) -> None:
    release = threading.Event()
    started: list[float] = []

    def hang() -> None:
        started.append(clock.time())
        release.wait(30)

    s = Scheduler(clock=clock, timezone="UTC", max_workers=2, lead=0)
    paused: list[JobPaused] = []
    s.add_listener(paused.append, JobPaused)
    s.start()
    try:
        s.add_job(hang, "every 20s", name="hang", timeout=5)
        s.add_job(lambda: None, "every 20s", name="fine")
        for k in range(1, MAX_ABANDONED + 1):
            clock.advance(20 if k == 1 else 15)  # a fire time
            wait_for(lambda k=k: len(started) == k, 10, f"run {k} to start")
            clock.advance(5)  # its timeout: reported timed_out, its thread goes on
            wait_for(lambda k=k: s.status()["abandoned_runs"] == k, 10, f"run {k} abandoned")
        assert not s.get_job("hang").paused
        clock.advance(15)  # the next fire time: no more threads for this job
        wait_for(lambda: s.get_job("hang").paused, 10, "the job to be paused")
        assert [e.job_name for e in paused] == ["hang"]
        status = s.status()
        why = status["stalled"]["hang"]
        assert f"{MAX_ABANDONED} earlier runs" in why and "executor='process'" in why
        assert status["paused"] == 1 and not s.get_job("fine").paused
        newest = s.get_runs("hang")[0]
        assert newest.status is RunStatus.skipped and newest.error == why
        assert s.store.get_job("hang").paused  # type: ignore[union-attr]
        clock.advance(100)  # it stays stopped; the other job goes on
        wait_for(lambda: len(s.get_runs("fine")) >= 5, 10, "the other job's runs")
        assert len(started) == MAX_ABANDONED
        assert _threads() <= 2 + MAX_ABANDONED
        # once the bodies return, resuming the job fires it again
        release.set()
        wait_for(lambda: s.status()["abandoned_runs"] == 0, 10, "the bodies to return")
        s.resume_job("hang")
        assert "hang" not in s.status()["stalled"]
        clock.advance(20)
        wait_for(lambda: len(started) == MAX_ABANDONED + 1, 10, "a run after resume")
    finally:
        release.set()
        s.shutdown()
