"""The run writer: batches off the hot path, and out of the way of a burst."""

from __future__ import annotations

import pytest

from nbsched._engine import writer as _writer
from nbsched._engine.writer import RunWriter
from nbsched.jobs import Run, RunStatus
from nbsched.stores.memory import MemoryJobStore
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
