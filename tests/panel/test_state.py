"""panel/state.py: snapshots, the run book and the throttle, as plain data (no widgets)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from nbsched import Scheduler
from nbsched.events import RunFinished, RunStarted
from nbsched.jobs import Run, RunStatus
from nbsched.panel.runbook import RunBook
from nbsched.panel.state import SCHEMA_VERSION, Throttle, as_dict, snapshot
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


def ok() -> None:
    print("ok ran")


def boom() -> None:
    raise RuntimeError("kaput")


def booked(sched: Scheduler) -> RunBook:
    book = RunBook()
    sched.add_listener(book.on_event)
    return book


def finished(sched: Scheduler, name: str, n: int = 1) -> list[Run]:
    def enough() -> list[Run] | None:
        runs = [r for r in sched.get_runs(name) if r.status.finished]
        return runs if len(runs) >= n else None

    wait_for(enough, what=f"{n} finished runs of {name}")
    return enough() or []


def test_rows_states_and_countdowns(sched: Scheduler, clock: FakeClock) -> None:
    book = booked(sched)
    sched.add_job(ok, "every 10s", name="good")
    sched.add_job(boom, "every 10s", name="bad")
    sched.add_job(ok, "every 1h", name="resting", paused=True)
    clock.advance(10)
    finished(sched, "good")
    finished(sched, "bad")
    wait_for(lambda: {"good", "bad"} <= set(book.last_runs()), what="the book saw both runs")

    state = snapshot(sched, clock.time(), book)
    assert state.version == SCHEMA_VERSION
    assert state.running and state.healthy and state.error is None
    rows = {r.name: r for r in state.jobs}
    assert [r.name for r in state.jobs] == ["bad", "good", "resting"]
    assert (rows["good"].state, rows["good"].last_status) == ("active", "succeeded")
    assert (rows["bad"].state, rows["bad"].last_status) == ("failing", "failed")
    assert rows["resting"].state == "paused" and rows["resting"].paused
    assert rows["resting"].next_in == "" and rows["resting"].next_ts is None
    assert rows["good"].next_in == "in 10s" and rows["good"].next_at == "08:00:20"
    assert rows["good"].schedule == "Every 10 seconds"
    assert dict(state.counts) == {
        "active": 1, "running": 0, "failing": 1, "paused": 1, "unbound": 0, "finished": 0,
    }
    # Upcoming: soonest first, with a countdown that moves with the clock.
    assert sorted(u.job_name for u in state.upcoming) == ["bad", "good"]  # not the paused one
    assert {u.countdown for u in state.upcoming} == {"in 10s"}
    clock.advance(3)  # no fire: the countdown alone changes
    later = snapshot(sched, clock.time(), book)
    assert later.upcoming[0].countdown == "in 7s"
    # History: newest first, with durations; the detail of a failed run has its traceback.
    assert {r.job_name for r in state.runs} == {"good", "bad"}
    bad_run = next(r for r in state.runs if r.job_name == "bad")
    assert bad_run.status == "failed" and bad_run.started == "08:00:10"
    detail = snapshot(sched, clock.time(), book, selected=bad_run.id).detail
    assert detail is not None and detail.status == "failed"
    assert "RuntimeError: kaput" in detail.error
    assert "nbsched/executors" not in detail.error  # nbsched's own frames are left out
    good_id = next(r.id for r in state.runs if r.job_name == "good")
    detail = snapshot(sched, clock.time(), book, selected=good_id).detail
    assert detail is not None and detail.output == "ok ran\n"
    # JSON-able for other front ends.
    assert as_dict(state)["jobs"][0]["name"] == "bad"


def test_filter_search_and_row_limit(sched: Scheduler, clock: FakeClock) -> None:
    book = booked(sched)
    for i in range(30):
        sched.add_job(ok, "every 1h", name=f"job{i:02d}", paused=i % 3 == 0)
    state = snapshot(sched, clock.time(), book, max_rows=5)
    assert state.total == 30 and state.matching == 30 and len(state.jobs) == 5
    paused = snapshot(sched, clock.time(), book, state="paused")
    assert paused.matching == 10 and all(r.state == "paused" for r in paused.jobs)
    found = snapshot(sched, clock.time(), book, query=" JOB1")
    assert [r.name for r in found.jobs] == [f"job1{i}" for i in range(10)]
    both = snapshot(sched, clock.time(), book, query="job1", state="paused")
    assert [r.name for r in both.jobs] == ["job12", "job15", "job18"]
    none = snapshot(sched, clock.time(), book, query="nothing-like-this")
    assert none.matching == 0 and none.jobs == () and none.total == 30


def test_running_state_and_in_flight_history(sched: Scheduler, clock: FakeClock) -> None:
    book = booked(sched)
    release = threading.Event()
    sched.add_job(lambda: release.wait(10), "every 10s", name="slow")
    clock.advance(10)
    wait_for(lambda: book.running(), what="the run to start")
    clock.advance(4)
    state = snapshot(sched, clock.time(), book)
    row = state.jobs[0]
    assert row.state == "running" and row.running_run_id is not None
    assert state.runs[0].status == "running" and state.runs[0].duration == "4s"
    detail = snapshot(sched, clock.time(), book, selected=row.running_run_id).detail
    assert detail is not None and detail.status == "running"
    (lane,) = state.lanes  # the run in flight is on the timeline too, up to now
    assert lane.marks == ((clock.time() - 4, None, RunStatus.running),)
    release.set()
    wait_for(lambda: not book.running(), what="the run to finish")
    after = snapshot(sched, clock.time(), book, selected=row.running_run_id)
    assert after.jobs[0].state == "active" and after.runs[0].status == "succeeded"


def test_timeline_lanes_hold_recent_runs_and_next_fires(sched: Scheduler, clock: FakeClock) -> None:
    book = booked(sched)
    sched.add_job(ok, "every 10s", name="tick")
    for n in range(1, 4):
        clock.advance(10)
        finished(sched, "tick", n)
    wait_for(lambda: len(book.view(["tick"])[3]["tick"]) == 3, what="3 marks")
    state = snapshot(sched, clock.time(), book)
    (lane,) = state.lanes
    assert [m[2] for m in lane.marks] == [RunStatus.succeeded] * 3
    start, end = state.window
    assert start < lane.marks[0][0] and end > clock.time()
    assert lane.ahead and lane.ahead[0] == clock.time() + 10
    assert all(b - a == 10 for a, b in zip(lane.ahead, lane.ahead[1:], strict=False))
    assert lane.ahead[-1] <= end


def test_run_book_seeds_from_history_and_follows_events() -> None:
    def run(i: int, name: str, status: RunStatus) -> Run:
        return Run(id=f"r{i}", job_name=name, status=status, scheduled_ts=float(i),
                   started_ts=float(i), finished_ts=None if status is RunStatus.running else i + 0.5)

    book = RunBook(history=3)
    book.seed([run(3, "a", RunStatus.running), run(2, "b", RunStatus.failed),
               run(1, "a", RunStatus.succeeded)])
    assert book.running() == {"a": "r3"}
    assert {k: v.id for k, v in book.last_runs().items()} == {"a": "r1", "b": "r2"}
    book.select("r1")
    changes = book.changes
    book.on_event(RunFinished(timestamp=4.0, job_name="a", run=run(3, "a", RunStatus.failed)))
    assert book.changes == changes + 1 and book.running() == {}
    assert book.last_runs()["a"].status is RunStatus.failed
    for i in range(4, 8):  # pushes r1 out of the 3-run history...
        book.on_event(RunStarted(timestamp=float(i), job_name="c", run_id=f"r{i}",
                                 scheduled_ts=float(i)))
        book.on_event(RunFinished(timestamp=i + 0.5, job_name="c",
                                  run=run(i, "c", RunStatus.succeeded)))
    assert book.find("r2") is None
    found = book.find("r1")  # ...but the selected run stays findable
    assert found is not None and found.id == "r1"
    # Progress events (notebook runs) are taken by their fields.
    class Progress:  # the shape of RunProgress
        run_id, job_name, cells_done, cells_total, timestamp = "r9", "nb", 2, 5, 9.0

    book.on_event(Progress())  # type: ignore[arg-type]
    assert book.view([])[2] == {"r9": (2, 5)}

    # Events that arrive before the stored history is read are newer: they stay.
    late = RunBook()
    late.on_event(RunFinished(timestamp=5.5, job_name="a", run=run(5, "a", RunStatus.succeeded)))
    late.seed([run(5, "a", RunStatus.running), run(4, "a", RunStatus.failed)])
    assert late.last_runs()["a"].id == "r5" and late.running() == {}
    assert [r.id for r in late.view(["a"])[0]] == ["r4", "r5"]
    assert [m[2] for m in late.view(["a"])[3]["a"]] == [RunStatus.failed, RunStatus.succeeded]
    late.seed_last({"a": run(1, "a", RunStatus.failed), "old": run(0, "old", RunStatus.failed),
                    "never": None})
    assert {k: v.id for k, v in late.last_runs().items()} == {"a": "r5", "old": "r0"}


def test_throttle_limits_refreshes_and_ticks_for_countdowns() -> None:
    clock = FakeClock(0)
    throttle = Throttle(min_interval=0.5, tick=1.0)
    assert throttle.wait_time(clock.time()) == 0  # the first refresh is due at once
    refreshes = 0
    # 200 changes a second for 3 s, one refresh attempt per change: at most 2 refreshes/s.
    for _ in range(600):
        clock.advance(0.005)
        throttle.mark()
        if throttle.wait_time(clock.time()) == 0:
            throttle.done(clock.time())
            refreshes += 1
    assert refreshes == 6
    # Quiet: nothing marked, the refresh is due one tick after the last one.
    last = clock.time()
    throttle.done(last)
    assert throttle.wait_time(last + 0.6) == pytest.approx(0.4)
    assert throttle.wait_time(last + 1.0) == 0
    throttle.mark()
    assert throttle.wait_time(last + 0.2) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="min_interval"):
        Throttle(min_interval=2, tick=1)


def test_job_state_words_in_order_of_precedence() -> None:
    from nbsched.jobs import Job
    from nbsched.panel.state import job_state
    from nbsched.triggers import parse_trigger

    trigger = parse_trigger("every 1h", timezone="UTC")
    base = Job(name="j", target="m:f", trigger=trigger,
               next_run_time=datetime(2026, 1, 1, 10, tzinfo=UTC))
    failed = Run(id="r", job_name="j", status=RunStatus.failed, scheduled_ts=0.0)
    ok_run = Run(id="r", job_name="j", status=RunStatus.succeeded, scheduled_ts=0.0)
    assert job_state(base, None, False) == "active"
    assert job_state(base, ok_run, False) == "active"
    assert job_state(base, failed, False) == "failing"
    assert job_state(replace(base, paused=True), failed, False) == "paused"
    assert job_state(replace(base, paused=True), failed, True) == "running"
    assert job_state(replace(base, unbound=True, paused=True), None, True) == "unbound"
    assert job_state(replace(base, next_run_time=None), ok_run, False) == "finished"
