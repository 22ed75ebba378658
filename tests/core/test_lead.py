"""Runs handed to the thread executor ahead of their fire time (``Scheduler(lead=...)``).

The scheduler does its dispatch work for a fire time up to ``lead`` seconds early; the
worker holding the run starts the body at the fire time itself. By default the lead is
0.1 s; these tests give a fake-clock scheduler a lead of 1 s (LEAD, the most it takes) so
that every step can be observed without sleeping.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from nbsched import DateTrigger, InvalidArgumentError, RunStatus, Scheduler
from nbsched._engine.lead import GUESS_PER_CLAIMED_FIRE, GUESS_PER_FIRE, LEAD_MAX, Lead
from nbsched.abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from nbsched.events import JobAdded, RunFinished, RunStarted
from nbsched.executors.thread import ThreadJobExecutor
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for

LEAD = 1.0


def noop() -> None:
    """A job body a SQLite store can refer to by name."""


@pytest.fixture
def early(clock: FakeClock) -> Iterator[Scheduler]:
    s = Scheduler(clock=clock, timezone="UTC", max_workers=4, lead=LEAD)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def handed_over(s: Scheduler, n: int = 1) -> None:
    wait_for(lambda: s.status()["running_runs"] == n, 10, f"{n} run(s) handed over")


def finished_runs(s: Scheduler, name: str, n: int) -> list[Any]:
    def enough() -> bool:
        return sum(r.status.finished for r in s.get_runs(name)) >= n

    wait_for(enough, 10, f"{n} finished run(s) of {name!r}")
    return [r for r in s.get_runs(name) if r.status.finished]


def test_a_run_handed_over_early_starts_at_its_fire_time(early: Scheduler, clock: FakeClock) -> None:
    started: list[float] = []
    t0 = clock.time()
    early.add_job(lambda: started.append(clock.time()), "every 10s", name="tick")
    clock.advance(10 - LEAD / 2)  # inside the lead: dispatched, not started
    handed_over(early)
    assert started == []
    assert early.get_runs("tick") == []  # not "running" before its fire time
    clock.advance(LEAD / 2)
    (run,) = finished_runs(early, "tick", 1)
    assert run.status is RunStatus.succeeded
    assert run.scheduled_ts == t0 + 10 and run.started_ts == started[0] == t0 + 10


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.pause_job("tick"), "paused before this fire time"),
        (lambda s: s.remove_job("tick"), "removed or replaced before this fire time"),
        (
            lambda s: s.add_job(lambda: None, "every 10s", name="tick", replace_existing=True),
            "removed or replaced before this fire time",
        ),
    ],
    ids=["pause", "remove", "replace"],
)
def test_a_run_handed_over_early_does_not_start_if_its_job_changed(
    early: Scheduler, clock: FakeClock, change: Callable[[Scheduler], Any], reason: str
) -> None:
    ran: list[int] = []
    seen: list[Any] = []
    early.add_listener(seen.append, RunFinished)
    early.add_job(lambda: ran.append(1), "every 10s", name="tick")
    clock.advance(10 - LEAD / 2)
    handed_over(early)
    change(early)
    clock.advance(LEAD / 2)
    wait_for(lambda: seen, 10, "the run to be reported")
    (event,) = seen
    assert event.run.status is RunStatus.cancelled and reason in event.run.error
    assert ran == [] and event.run.started_ts is not None


def test_a_job_still_running_is_decided_at_its_fire_time(early: Scheduler, clock: FakeClock) -> None:
    """max_instances is checked when the fire time comes, not a lead earlier: a run that ends
    between the two does not make the next one ``skipped``."""
    release = threading.Event()
    calls: list[float] = []

    def slow() -> None:
        calls.append(clock.time())
        if len(calls) == 1:
            release.wait(10)

    t0 = clock.time()
    early.add_job(slow, "every 10s", name="slow", max_instances=1)
    clock.advance(10)
    wait_for(lambda: len(calls) == 1, 10, "the first run to start")
    clock.advance(10 - LEAD / 2)  # the next fire time is within the lead, the job still runs
    wait_for(lambda: early._engine.loop.held, 10, "the next fire time to be held back")
    assert early.status()["running_runs"] == 1  # only the running one
    release.set()
    finished_runs(early, "slow", 1)
    clock.advance(LEAD / 2)
    runs = finished_runs(early, "slow", 2)
    assert [r.status for r in runs] == [RunStatus.succeeded] * 2
    assert calls == [t0 + 10, t0 + 20]


class _OnTimeOnly(Executor):
    """An executor that cannot hold runs (``accepts_early`` False): records when it gets them."""

    name = "ontime"

    def __init__(self) -> None:
        self.submitted: list[tuple[float, float]] = []  # (clock time, scheduled_ts)
        self._clock: Clock | None = None
        self._finish: FinishCallback | None = None

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock, self._finish = clock, on_finished

    def submit(self, request: RunRequest) -> None:
        assert self._clock is not None and self._finish is not None
        self.submitted.append((self._clock.time(), request.scheduled_ts))
        assert request.not_before is None
        request.started_ts = self._clock.time()
        self._finish(request, RunStatus.succeeded, "", None, self._clock.time())

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        return False

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        pass


def test_executors_that_cannot_hold_runs_get_them_at_their_fire_time(clock: FakeClock) -> None:
    ontime = _OnTimeOnly()
    s = Scheduler(clock=clock, timezone="UTC", executors={"ontime": ontime}, lead=LEAD)
    s.start()
    try:
        t0 = clock.time()
        s.add_job(lambda: None, "every 10s", name="tick", executor="ontime")
        clock.advance(10 - LEAD / 2)
        wait_for(lambda: s._engine.loop.held, 10, "the fire time to be held back")
        assert s.status()["running_runs"] == 0 and ontime.submitted == []
        clock.advance(LEAD / 2)
        wait_for(lambda: ontime.submitted, 10, "the run to be submitted")
        assert ontime.submitted == [(t0 + 10, t0 + 10)]
    finally:
        s.shutdown()


def test_shutdown_cancels_runs_waiting_for_their_fire_time(clock: FakeClock) -> None:
    s = Scheduler(clock=clock, timezone="UTC", lead=LEAD)
    seen: list[Any] = []
    s.add_listener(seen.append, RunFinished)
    s.start()
    s.add_job(lambda: None, "every 10s", name="tick")
    clock.advance(10 - LEAD / 2)
    handed_over(s)
    s.shutdown()  # bounded; the waiting worker lets go at once
    assert [e.run.status for e in seen] == [RunStatus.cancelled]
    assert "shut down before it started" in seen[0].run.error
    assert s.get_runs("tick")[0].status is RunStatus.cancelled


def test_runs_are_handed_over_a_little_early_by_default() -> None:
    assert Scheduler(timezone="UTC")._engine.loop.lead == 0.1
    assert Scheduler(clock=FakeClock(), lead=0)._engine.loop.lead == 0  # every step explicit
    for bad in (-0.1, 1.5, "0.1", True):
        with pytest.raises(InvalidArgumentError, match="lead must be seconds"):
            Scheduler(lead=bad)  # type: ignore[arg-type]


def test_listeners_can_ask_for_some_event_types_only(sched: Scheduler, clock: FakeClock) -> None:
    finished: list[Any] = []
    either: list[Any] = []
    sched.add_listener(finished.append, RunFinished)
    remove = sched.add_listener(either.append, (RunStarted, JobAdded))
    sched.add_job(lambda: None, "every 10s", name="tick")
    clock.advance(10)
    wait_for(lambda: finished, 10, "RunFinished")
    assert [type(e) for e in finished] == [RunFinished]
    assert [type(e) for e in either] == [JobAdded, RunStarted]
    remove()
    clock.advance(10)
    wait_for(lambda: len(finished) == 2, 10, "the second RunFinished")
    assert len(either) == 2
    with pytest.raises(InvalidArgumentError, match="event classes"):
        sched.add_listener(print, str)  # type: ignore[arg-type]


def test_the_thread_executor_says_it_holds_runs() -> None:
    assert ThreadJobExecutor.accepts_early and not Executor.accepts_early


def test_the_store_keeps_a_held_fire_time_until_it_comes(tmp_path, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Were the process to die with a run handed over but not started, the restarted
    scheduler must still find that fire time due: the store's next run time moves on only
    once the fire time has come."""
    s = Scheduler(f"sqlite:///{tmp_path / 'jobs.db'}", clock=clock, timezone="UTC", lead=LEAD)
    s.start()
    try:
        t0 = clock.time()
        s.add_job(noop, "every 10s", name="tick")
        clock.advance(10 - LEAD / 2)
        handed_over(s)
        s.get_runs()  # writes everything pending
        assert s.store.get_job("tick").next_ts == t0 + 10  # type: ignore[union-attr]
        clock.advance(LEAD / 2)
        finished_runs(s, "tick", 1)

        def moved_on() -> bool:
            s.get_runs()
            return s.store.get_job("tick").next_ts == t0 + 20  # type: ignore[union-attr]

        wait_for(moved_on, 10, "the stored next run time to move on")
    finally:
        s.shutdown()


def test_a_held_run_can_be_cancelled_and_the_pool_goes_on(early: Scheduler, clock: FakeClock) -> None:
    ran: list[float] = []
    t0 = clock.time()
    early.add_job(lambda: ran.append(clock.time()), "every 10s", name="tick")
    clock.advance(10 - LEAD / 2)
    handed_over(early)
    run = early.cancel_run("tick")
    assert run is not None and run.status is RunStatus.cancelled and run.started_ts is None
    clock.advance(LEAD / 2)  # the held worker wakes, finds its run cancelled, lets it go
    clock.advance(10)
    wait_for(lambda: ran, 10, "the next run")
    assert ran == [t0 + 20]
    assert [r.status for r in early.get_runs("tick")] == [RunStatus.succeeded, RunStatus.cancelled]


def test_the_lead_grows_with_the_dispatch_of_a_large_burst() -> None:
    """Dispatching ten thousand runs can take longer than the lead: the next wave starts
    twice as long ahead, and the lead shrinks back by a tenth a wave, never below 0.1 s."""
    loop = Scheduler(timezone="UTC")._engine.loop
    base = loop.lead

    def wave(start: float, end: float) -> None:
        loop._lead.dispatched(start, 10)
        loop.end_wave(end)

    wave(100.0, 100.3)  # a wave of 0.3 s
    assert loop.lead == pytest.approx(0.6)
    wave(200.0, 200.01)
    assert loop.lead == pytest.approx(0.54)
    wave(300.0, 305.0)
    assert loop.lead == 1.0  # at most
    for k in range(100):
        wave(400.0 + k, 400.0 + k + 0.001)
    assert loop.lead == base
    fixed = Scheduler(clock=FakeClock(), lead=0)._engine.loop
    fixed._lead.dispatched(100.0, 10)
    fixed.end_wave(100.3)
    assert fixed.lead == 0  # a lead of 0 stays 0: every step explicit


def test_the_lead_is_long_enough_for_the_fires_due_together_before_they_come() -> None:
    """The first burst is not dispatched late either: before it sleeps, the loop counts the
    fires due around the next one and wakes early enough to dispatch them all at the cost
    per fire of its earlier waves (a guess before the first)."""
    lead = Lead(0.1, claims=True)
    heap: list[tuple[float, str]] = []
    for i in range(10_000):
        heapq.heappush(heap, (1000.0 + (i % 3) * 0.01, f"j{i}"))
    for i in range(5_000):  # an hour later: not part of this burst
        heapq.heappush(heap, (4600.0, f"k{i}"))
    wanted = min(LEAD_MAX, 2 * 10_000 * GUESS_PER_CLAIMED_FIRE)
    assert lead.ahead(heap) == pytest.approx(wanted)
    lead.dispatched(1000.0 - wanted, 10_000)  # it took 40 us a fire: the next burst knows
    lead.end_wave(1000.0 - wanted + 0.4)
    assert lead.per_fire == pytest.approx(40e-6)
    assert lead.ahead(heap) == pytest.approx(0.8)
    few = [(1000.0, "a"), (1000.05, "b")]
    assert Lead(0.1, claims=True).ahead(few) == 0.1  # a few fires: the base lead
    assert Lead(0, claims=True).ahead(heap) == 0  # every step explicit
    huge = [(1000.0, f"h{i}") for i in range(100_000)]
    assert Lead(0.1, claims=False).ahead(huge) == LEAD_MAX  # at most


def test_a_first_burst_of_claimed_fires_is_handed_over_before_its_fire_time(
    tmp_path, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    """Two thousand fires claimed in an SQLite file take longer than a base lead of 0.02 s
    (by the first guess of the cost per fire): the loop wakes earlier than that, however the
    jobs came in while it slept."""
    base = 0.02
    s = Scheduler(f"sqlite:///{tmp_path / 'jobs.db'}", clock=clock, timezone="UTC", lead=base)
    s.start()
    try:
        t0 = clock.time()
        when = datetime.fromtimestamp(t0 + 3600, UTC)
        for i in range(2_000):
            s.add_job(noop, DateTrigger(when), name=f"d{i}")
        # the lead the loop works out: 2 x 2,000 x the guess, less a quarter at most (it
        # wakes to work it out again only when a quarter more is needed)
        shortest = 2 * 2_000 * GUESS_PER_CLAIMED_FIRE / 1.25
        assert shortest > base
        clock.advance(3600 - shortest)
        handed_over(s, 2_000)
        assert s.get_runs() == []  # none started: their fire time has not come
        clock.advance(shortest)
        wait_for(lambda: len(s.get_runs(limit=3_000)) == 2_000, 30, "the burst run")
        assert {r.started_ts for r in s.get_runs(limit=3_000)} == {t0 + 3600}
    finally:
        s.shutdown()


def test_jobs_added_for_a_later_time_do_not_wake_the_loop(sched: Scheduler, clock: FakeClock) -> None:
    """A loop asleep until a fire time far off wakes LEAD_MAX before it and works the lead
    out then: a burst of add_job for that time (more fires than the lead it slept with can
    dispatch) does not wake it as the jobs come, and the lead is still long enough."""
    loop = sched._engine.loop
    when = clock.time() + 3600
    sched.add_job(noop, DateTrigger(datetime.fromtimestamp(when, UTC)), name="first")
    wait_for(lambda: loop._wake_at == when - LEAD_MAX, 10, "the loop to sleep until then")
    wakes: list[int] = []
    notify = loop.cond.notify
    loop.cond.notify = lambda n=1: (wakes.append(n), notify(n))[1]  # type: ignore[method-assign]
    n = 8_000  # 2 x 8,000 x 10 us: 0.16 s of lead, more than the base 0.1 s
    for i in range(n - 1):
        sched.add_job(noop, DateTrigger(datetime.fromtimestamp(when, UTC)), name=f"d{i}")
    assert wakes == []
    clock.advance(3600 - LEAD_MAX)
    wanted = 2 * n * GUESS_PER_FIRE

    def sleeps_with_the_lead() -> bool:
        wake_at = loop._wake_at
        return wake_at is not None and abs(wake_at - (when - wanted)) < 1e-6

    wait_for(sleeps_with_the_lead, 10, "the loop to work the lead out")
    assert loop.lead == pytest.approx(wanted)
