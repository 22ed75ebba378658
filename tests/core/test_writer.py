"""The run writer: batches off the hot path, and out of the way of a burst."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from nbsched import DateTrigger, Scheduler
from nbsched._engine import loop as _loop
from nbsched._engine import writer as _writer
from nbsched._engine.writer import RunWriter
from nbsched.abc import RunRequest
from nbsched.jobs import Run, RunStatus
from nbsched.stores.memory import MemoryJobStore
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


def finished(run_id: str) -> Run:
    return Run(id=run_id, job_name="j", status=RunStatus.succeeded, scheduled_ts=1.0,
               started_ts=1.0, finished_ts=2.0)


def test_a_batch_waits_while_runs_wait_for_a_worker() -> None:
    store = MemoryJobStore()
    backlog = [3]  # the executors' backlog, as the writer sees it on each look
    looks: list[int] = []

    def busy() -> bool:
        # every look the writer takes before writing finds the record still unwritten
        looks.append(len(store.get_runs()))
        backlog[0] -= 1
        return backlog[0] > 0

    writer = RunWriter(store, dict, lambda message: None, busy=busy)
    writer.start()
    try:
        writer.finished(finished("r1"))
        wait_for(lambda: store.get_runs(), 10, "the record to be written")
        assert looks == [0, 0, 0]  # held back twice, written once the backlog was gone
    finally:
        writer.stop()


def test_holding_back_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "BURST_DEFER", 0.05)
    store = MemoryJobStore()
    writer = RunWriter(store, dict, lambda message: None, busy=lambda: True)  # never clears
    writer.start()
    try:
        writer.finished(finished("r1"))
        wait_for(lambda: store.get_runs(), 10, "the record to be written anyway")
    finally:
        writer.stop()


def test_a_flush_does_not_wait_for_the_backlog() -> None:
    store = MemoryJobStore()
    writer = RunWriter(store, dict, lambda message: None, busy=lambda: True)  # never clears
    writer.finished(finished("r1"))
    assert writer.flush(timeout=5)  # get_runs() must see everything at once
    assert [r.id for r in store.get_runs()] == ["r1"]


def test_a_batch_waits_while_the_loop_claims_fires(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With claims, a pass is a store transaction from its start: the writer counts it as
    busy while it runs, not only once it ended with more fires due (a batch begun during the
    first pass of a restart's catch-up held up the claims of the next one)."""
    sched = Scheduler(db_url=db_url, clock=clock, timezone="UTC")
    engine = sched._engine
    busy_at_claims: list[bool] = []
    claim_fires = engine.store.claim_fires

    def watched(*args: Any, **kwargs: Any) -> Any:
        busy_at_claims.append(engine._busy())
        return claim_fires(*args, **kwargs)

    monkeypatch.setattr(engine.store, "claim_fires", watched)
    when = datetime.fromtimestamp(clock.time() + 60, UTC)
    for i in range(3):
        sched.add_job(print, DateTrigger(when), name=f"d{i}")
    sched.start()
    try:
        clock.advance(60)
        wait_for(lambda: busy_at_claims, 10, "the fires claimed")
        assert busy_at_claims == [True]
        wait_for(lambda: not engine._busy(), 10, "the pass done")
        assert not engine.loop.claiming
    finally:
        sched.shutdown()


def test_a_batch_waits_while_the_loop_has_more_fires_due_at_once(
    sched: Scheduler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wave larger than a pass's chunk takes several passes; the writer counts the fires
    still due as busy (with claims, each pass is a store transaction that a large batch of
    records would hold up)."""
    monkeypatch.setattr(_loop, "_CHUNK", 10)
    engine = sched._engine
    executor = engine.executor("thread")
    seen: list[tuple[bool, bool]] = []  # (more due, the writer's busy()) at each hand-over
    submit = executor.submit

    def watched(request: RunRequest) -> None:
        seen.append((engine.loop.more_due, engine._busy()))
        submit(request)

    monkeypatch.setattr(executor, "submit", watched)
    when = datetime.fromtimestamp(clock.time() + 60, UTC)
    for i in range(25):
        sched.add_job(print, DateTrigger(when), name=f"d{i}")
    clock.advance(60)
    wait_for(lambda: len(seen) == 25, 10, "the wave handed over")
    assert [more for more, _ in seen] == [True] * 20 + [False] * 5  # passes of 10, 10, 5
    assert all(busy for more, busy in seen if more)
    wait_for(lambda: not engine._busy(), 10, "the wave done")
