"""What only the memory store does: it keeps objects as they are, and costs little per job."""

from __future__ import annotations

import threading
import tracemalloc

from nbsched.jobs import Run, RunStatus
from nbsched.stores import MemoryJobStore

from .helpers import make_job, make_run


def test_arguments_are_kept_as_they_are_not_pickled() -> None:
    lock = threading.Lock()
    store = MemoryJobStore()
    store.add_job(make_job("a", args=(lock,), kwargs={"cb": lambda: 1}))
    got = store.get_job("a")
    assert got is not None and got.args[0] is lock and got.kwargs["cb"]() == 1


def test_idle_jobs_cost_little_beyond_the_job_objects() -> None:
    jobs = [make_job(f"job-{i:05d}", owner="nb") for i in range(10_000)]
    store = MemoryJobStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for job in jobs:
            store.add_job(job)
        per_job = (tracemalloc.get_traced_memory()[0] - before) / len(jobs)
    finally:
        tracemalloc.stop()
    assert per_job < 150, f"{per_job:.0f} bytes per job"


def test_internal_indexes_stay_consistent() -> None:
    """Pruning, replacing and removing leave no stray run behind (white box)."""
    store = MemoryJobStore(retention=3)
    store.add_job(make_job("a"))
    store.write_runs([make_run(f"r{i}", "a", i, status=RunStatus.running) for i in range(5)])
    store.write_runs([make_run("r4", "b", 4)])  # the same run id moves to another job
    store.write_runs([make_run("x", "c", 1)])
    store.remove_job("a")
    assert set(store._runs) == {"r4", "x"}
    assert set(store._history) == {"b", "c"}
    assert store._running == set()


def test_stored_runs_add_nothing_to_full_garbage_collections() -> None:
    """A long history must not make the collector's full passes (which stall every thread)
    longer: runs are kept as tuples of strings and numbers, which it stops tracking."""
    import gc

    store = MemoryJobStore()
    store.write_runs([
        Run(id=f"r{i}", job_name="j", status=RunStatus.failed, scheduled_ts=float(i),
            started_ts=float(i), finished_ts=i + 0.5, output="out", error="boom", owner="nb")
        for i in range(100)
    ])
    gc.collect()
    assert not any(gc.is_tracked(packed) for packed in store._runs.values())
    assert store.get_runs("j", limit=1)[0] == Run(
        id="r99", job_name="j", status=RunStatus.failed, scheduled_ts=99.0, started_ts=99.0,
        finished_ts=99.5, output="out", error="boom", owner="nb",
    )
