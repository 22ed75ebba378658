"""Relative schedules through the scheduler: a trigger parsed (and so anchored) before its
job is added fires from the job's start, on a fixed grid, and "in ..." fires once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nbsched import RunStatus, Scheduler
from nbsched.testing import FakeClock
from nbsched.triggers import parse_trigger
from tests.helpers.wait import wait_for


def finished(s: Scheduler, name: str, n: int) -> list[float]:
    """Wait (bounded) for ``n`` finished runs of ``name``; their fire times, oldest first."""

    def enough() -> bool:
        return sum(r.status.finished for r in s.get_runs(name, limit=100)) >= n

    wait_for(enough, 10.0, f"{n} runs of {name!r}")
    runs = [r for r in reversed(s.get_runs(name, limit=100)) if r.status.finished]
    assert {r.status for r in runs} == {RunStatus.succeeded}
    return [r.scheduled_ts for r in runs]


def test_a_trigger_parsed_earlier_fires_from_the_job_start(
    sched: Scheduler, clock: FakeClock
) -> None:
    parsed = parse_trigger("every 7s", now=datetime.fromtimestamp(clock.time(), UTC))
    clock.advance(100.5)  # the job is added later than the trigger was parsed
    t0 = clock.time()
    job = sched.add_job(lambda: None, parsed, name="grid")
    assert job.next_run_time == datetime.fromtimestamp(t0 + 7, UTC)
    clock.advance(0.2)
    for k in range(1, 4):
        clock.advance(7)
        fires = finished(sched, "grid", k)
    assert [f - t0 for f in fires] == [7, 14, 21]
    # a late look does not move the grid
    assert sched.get_job("grid").next_run_time == datetime.fromtimestamp(t0 + 28, UTC)


def test_in_fires_once(sched: Scheduler, clock: FakeClock) -> None:
    t0 = clock.time()
    sched.add_job(lambda: None, "in 10 minutes", name="once")
    clock.advance(600.5)
    assert finished(sched, "once", 1) == [t0 + 600]
    wait_for(lambda: sched.get_job("once").next_run_time is None, 10.0, "no next run")
    clock.advance(timedelta(hours=1).total_seconds())
    assert len(sched.get_runs("once")) == 1
