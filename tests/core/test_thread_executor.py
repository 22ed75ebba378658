"""The thread executor's queue: runs that wait for their fire time, bursts, reports.

The executor is driven on its own here (no scheduler), by a fake clock: requests are
submitted as the scheduler's loop would, and every report is recorded in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbsched import RunStatus
from nbsched.abc import RunRequest
from nbsched.executors import capture
from nbsched.executors.thread import RELEASE_AT_ONCE, REPORT_WITHIN, ThreadJobExecutor
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


class Pool:
    """A started executor and what happened in it, in order: ``("body", id)`` when a body
    runs, ``(status, id)`` when a run is reported."""

    def __init__(self, clock: FakeClock, workers: int) -> None:
        self.clock = clock
        self.log: list[tuple[str, str]] = []
        self.errors: dict[str, str | None] = {}
        self.executor = ThreadJobExecutor(workers)
        self.executor.start(clock, lambda request: None, self._finished)

    def _finished(
        self, request: RunRequest, status: RunStatus, output: str, error: str | None, ts: float
    ) -> None:
        self.log.append((status.value, request.run_id))
        self.errors[request.run_id] = error

    def submit(
        self, run_id: str, body: Callable[[], Any] | None = None, not_before: float | None = None
    ) -> None:
        def run() -> None:
            self.log.append(("body", run_id))
            if body is not None:
                body()

        request = RunRequest(run_id, run_id, run, "x:y", (), {}, self.clock.time(), None, 0, None)
        request.not_before = not_before
        self.executor.submit(request)

    def reported(self, *run_ids: str) -> None:
        wait_for(
            lambda: {r for s, r in self.log if s != "body"} >= set(run_ids),
            10,
            f"reports of {run_ids}",
        )

    def statuses(self) -> dict[str, str]:
        return {r: s for s, r in self.log if s != "body"}


@pytest.fixture
def pool(clock: FakeClock, request: pytest.FixtureRequest) -> Iterator[Pool]:
    p = Pool(clock, getattr(request, "param", 1))
    try:
        yield p
    finally:
        p.executor.shutdown(timeout=2.0)


def test_runs_due_together_all_start_before_any_is_reported(pool: Pool, clock: FakeClock) -> None:
    t = clock.time() + 5
    for run_id in ("a", "b", "c"):
        pool.submit(run_id, not_before=t)
    clock.advance(5)
    pool.reported("a", "b", "c")
    assert pool.log == [
        ("body", "a"), ("body", "b"), ("body", "c"),
        ("succeeded", "a"), ("succeeded", "b"), ("succeeded", "c"),
    ]


def test_the_first_run_of_a_burst_starts_before_the_whole_burst_is_queued(
    pool: Pool, clock: FakeClock
) -> None:
    """At a burst's fire time, early requests are moved to the ready queue a part at a time:
    the first body does not wait for all of them to move."""
    t = clock.time() + 5
    n = 4 * RELEASE_AT_ONCE
    still_early: list[int] = []
    pool.submit("first", lambda: still_early.append(len(pool.executor._early)), not_before=t)
    for i in range(n - 1):
        pool.submit(f"r{i}", not_before=t)
    clock.advance(5)
    pool.reported("first", *(f"r{i}" for i in range(n - 1)))
    assert still_early == [n - RELEASE_AT_ONCE]
    assert [r for s, r in pool.log if s == "body"][:2] == ["first", "r0"]  # (in order)


def test_reports_wait_no_longer_than_report_within_while_runs_keep_coming(
    pool: Pool, clock: FakeClock
) -> None:
    t = clock.time() + 5
    pool.submit("a", not_before=t)
    pool.submit("b", lambda: clock.advance(2 * REPORT_WITHIN), not_before=t)
    pool.submit("c", not_before=t)
    clock.advance(5)
    pool.reported("a", "b", "c")
    assert pool.log == [
        ("body", "a"), ("body", "b"),
        ("succeeded", "a"),  # when "b" ended, "a" had waited longer than REPORT_WITHIN
        ("body", "c"), ("succeeded", "b"), ("succeeded", "c"),
    ]


def test_a_report_waits_no_longer_than_report_within_behind_a_long_body(
    pool: Pool, clock: FakeClock
) -> None:
    release = threading.Event()
    t = clock.time() + 5
    pool.submit("quick", not_before=t)
    pool.submit("long", lambda: release.wait(10), not_before=t)
    clock.advance(5)
    wait_for(lambda: ("body", "long") in pool.log, 10, "the long body to start")
    assert pool.statuses() == {}  # "quick" waits: the only worker went on to "long"
    clock.advance(REPORT_WITHIN)
    pool.reported("quick")
    assert pool.statuses() == {"quick": "succeeded"}
    release.set()
    pool.reported("long")


@pytest.mark.parametrize("pool", [2], indirect=True)
def test_a_run_due_now_does_not_wait_behind_runs_waiting_for_their_time(
    pool: Pool, clock: FakeClock
) -> None:
    t = clock.time() + 5
    pool.submit("early-1", not_before=t)
    pool.submit("early-2", not_before=t)
    pool.submit("now")  # run_job, say: due at once
    pool.reported("now")
    assert ("body", "early-1") not in pool.log and ("body", "early-2") not in pool.log
    clock.advance(5)
    pool.reported("early-1", "early-2")


def test_runs_waiting_for_their_time_start_in_fire_time_order(pool: Pool, clock: FakeClock) -> None:
    t = clock.time()
    pool.submit("later", not_before=t + 20)
    pool.submit("sooner", not_before=t + 10)  # handed over after a later one
    clock.advance(10)
    pool.reported("sooner")
    assert ("body", "later") not in pool.log
    clock.advance(10)
    pool.reported("later")


def test_a_queued_run_can_be_cancelled_or_timed_out_before_it_starts(
    pool: Pool, clock: FakeClock
) -> None:
    release = threading.Event()
    pool.submit("busy", lambda: release.wait(10))
    wait_for(lambda: ("body", "busy") in pool.log, 10, "the first body to start")
    pool.submit("queued")
    pool.submit("held", not_before=clock.time() + 5)
    assert pool.executor.cancel("queued", RunStatus.timed_out)
    assert pool.executor.cancel("held")
    assert not pool.executor.cancel("queued")  # reported once only
    assert pool.statuses() == {"queued": "timed_out", "held": "cancelled"}
    assert pool.errors["queued"] == "Run timed out before it started"
    release.set()
    pool.reported("busy")
    clock.advance(5)
    assert ("body", "queued") not in pool.log and ("body", "held") not in pool.log


def test_shutdown_reports_every_run_exactly_once(pool: Pool, clock: FakeClock) -> None:
    release = threading.Event()
    t = clock.time() + 5
    pool.submit("done", not_before=t)
    pool.submit("stuck", lambda: release.wait(10), not_before=t)
    pool.submit("never", not_before=t + 5)
    clock.advance(5)
    wait_for(lambda: ("body", "stuck") in pool.log, 10, "the stuck body to start")
    pool.executor.shutdown(timeout=0.1)
    reports = [(s, r) for s, r in pool.log if s != "body"]
    assert sorted(reports) == [("cancelled", "never"), ("cancelled", "stuck"), ("succeeded", "done")]
    release.set()  # the abandoned body ends: its late result is dropped
    wait_for(lambda: not pool.executor._threads, 10, "the abandoned worker to exit")
    assert [(s, r) for s, r in pool.log if s != "body"] == reports


@pytest.mark.parametrize("pool", [2], indirect=True)
def test_the_next_fire_time_is_kept_while_the_last_one_runs_long(
    pool: Pool, clock: FakeClock
) -> None:
    release = threading.Event()
    t = clock.time()
    pool.submit("long", lambda: release.wait(10), not_before=t + 5)
    pool.submit("next", not_before=t + 10)
    clock.advance(5)
    wait_for(lambda: ("body", "long") in pool.log, 10, "the long body to start")
    clock.advance(5)  # the other worker took over the wait for "next"
    pool.reported("next")
    assert "long" not in pool.statuses()
    release.set()
    pool.reported("long")


def test_abandoned_runs_are_counted_per_job_and_the_pool_has_a_ceiling(clock: FakeClock) -> None:
    """A run stopped while its body hangs keeps its thread for good. The pool starts a
    replacement for each, but at most ``max_abandoned`` of them: never more threads."""
    reports: list[tuple[str, RunStatus]] = []
    executor = ThreadJobExecutor(1, max_abandoned=2)
    executor.start(clock, lambda request: None, lambda r, s, *_: reports.append((r.run_id, s)))
    release = threading.Event()
    started: list[str] = []

    def hang(run_id: str) -> None:
        started.append(run_id)
        release.wait(30)

    def workers() -> int:
        return sum(t.name.startswith("nbsched-thread-") and t.name[15:].isdigit()
                   for t in threading.enumerate())

    try:
        for i in range(4):  # jobs a, b, a, c: each run hangs and is stopped
            run_id, job = f"r{i}", "abac"[i]
            request = RunRequest(run_id, job, hang, "x:y", (run_id,), {}, clock.time(), None, 0, None)
            executor.submit(request)
            if i < 3:
                wait_for(lambda r=run_id: r in started, 10, f"{run_id} to start")
                assert executor.cancel(run_id, RunStatus.timed_out)
        assert executor.abandoned() == 3
        assert (executor.abandoned("a"), executor.abandoned("b"), executor.abandoned("c")) == (2, 1, 0)
        assert workers() == 3  # 1 + max_abandoned: r3 waits for a thread
        assert started == ["r0", "r1", "r2"]
        assert ("r3", RunStatus.succeeded) not in reports
        release.set()  # the hung bodies return: their threads are free again
        wait_for(lambda: ("r3", RunStatus.succeeded) in reports, 10, "r3 to run")
        wait_for(lambda: executor.abandoned() == 0, 10, "the abandoned runs to return")
        assert executor.abandoned("a") == 0
        wait_for(lambda: workers() <= 1, 10, "the extra threads to retire")
        # their late results are dropped: each run was reported once, when it was stopped
        assert sorted(reports) == [
            ("r0", RunStatus.timed_out), ("r1", RunStatus.timed_out),
            ("r2", RunStatus.timed_out), ("r3", RunStatus.succeeded),
        ]
    finally:
        release.set()
        executor.shutdown(timeout=5)


def test_output_so_far_shows_a_running_body_and_ends_with_it(pool: Pool) -> None:
    printed, release = threading.Event(), threading.Event()

    def body() -> None:
        print("first line")
        printed.set()
        assert release.wait(10)
        print("second line")

    executor = pool.executor
    assert executor.output_so_far("live") is None  # not submitted: nothing to tell
    capture.install()  # (the scheduler does this when it starts)
    try:
        pool.submit("live", body)
        wait_for(printed.is_set, 10, "the body to print")
        assert executor.output_so_far("live") == "first line\n"  # while the body still runs
        assert "live" not in pool.statuses()
    finally:
        release.set()
        pool.reported("live")
        capture.uninstall()
    assert executor.output_so_far("live") is None  # ended: its record has the output


def test_output_so_far_keeps_the_end_of_a_long_output() -> None:
    cap = capture.Capture()
    for i in range(5):
        cap.append(f"{i}" * 10)
    assert cap.text() == "".join(f"{i}" * 10 for i in range(5))
    assert cap.text(limit=15) == "[... 35 characters of output omitted ...]\n333334444444444"
    cap.append("x")
    assert cap.close().endswith("4444444444x")  # reading never took anything away


def test_the_executors_own_state_is_in_slots(pool: Pool, clock: FakeClock) -> None:
    """The workers read the executor's attributes for every run of a burst. CPython stops
    sharing an instance dict's keys with its class past 30 of them, and every read then takes
    a slower path, so the executor keeps its state in ``__slots__``: only what is set from
    outside (a name of its own, the scheduler's ``emit``) may land in its ``__dict__``. An
    attribute added without a slot fails here."""
    pool.executor.emit = lambda event: None
    t = clock.time() + 5
    pool.submit("a", not_before=t)
    clock.advance(5)
    pool.reported("a")
    assert set(vars(pool.executor)) <= {"name", "emit"}
