"""Per-run output capture (``nbsched.executors.capture``) with real threads: what a run's
threads write goes to the run, never into the notebook; after the run it is dropped.

The "cell" is a pair of StringIO streams standing in for ``sys.stdout``/``sys.stderr`` under
the routing proxies: whatever reaches them would have been printed into a notebook cell.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from nbsched import RunStatus, Scheduler
from nbsched.executors import capture
from nbsched.testing import FakeClock
from tests.core.test_scheduler import runs_of


@dataclass
class Cell:
    out: io.StringIO
    err: io.StringIO


@contextlib.contextmanager
def notebook() -> Iterator[Cell]:
    """The cell's streams, under the routing proxies. (Set up inside the test: pytest puts
    its own capture streams back on ``sys.stdout`` between a fixture's setup and the test.)"""
    c = Cell(io.StringIO(), io.StringIO())
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = c.out, c.err
    capture.install()
    try:
        yield c
    finally:
        capture.uninstall()
        sys.stdout, sys.stderr = saved


def run_in_job(body: Callable[[], None]) -> tuple[str, capture.Capture]:
    """Run ``body`` the way a thread executor runs a job: in a thread of its own, between
    ``begin()`` and ``end()``. Returns the run's output and its capture."""
    result: list[tuple[str, capture.Capture]] = []

    def job() -> None:
        capture.begin()
        try:
            body()
        finally:
            cap = capture.buffer()  # (a Capture once the run shared it with a thread)
            result.append((capture.end(), cap))  # type: ignore[arg-type]

    t = threading.Thread(target=job, name="job")
    t.start()
    t.join(10)
    assert result, "the job did not finish within 10 s"
    return result[0]


def test_a_thread_a_run_starts_writes_into_the_run_not_into_the_running_cell() -> None:
    with notebook() as cell:
        both_printing = threading.Barrier(2, timeout=10)

        def printer() -> None:
            both_printing.wait()
            for i in range(100):
                print(f"thread {i}")

        def body() -> None:
            t = threading.Thread(target=printer)
            t.start()
            t.join(10)
            print("job done")

        result: list[tuple[str, capture.Capture]] = []
        job = threading.Thread(target=lambda: result.append(run_in_job(body)))
        job.start()
        both_printing.wait()  # the cell prints while the job's thread does
        for i in range(100):
            print(f"cell {i}")
        job.join(10)
        output, _ = result[0]
        assert output == "".join(f"thread {i}\n" for i in range(100)) + "job done\n"
        assert cell.out.getvalue() == "".join(f"cell {i}\n" for i in range(100))


def test_threads_of_threads_and_thread_pools_in_a_run_write_into_it() -> None:
    with notebook() as cell:
        def body() -> None:
            def child() -> None:
                grandchild = threading.Thread(target=lambda: print("grandchild"))
                grandchild.start()
                grandchild.join(10)
                print("child", file=sys.stderr)

            t = threading.Thread(target=child)
            t.start()
            t.join(10)
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda i: print(f"task {i}"), range(4)))

        output, _ = run_in_job(body)
        lines = output.splitlines()
        assert lines[:2] == ["grandchild", "child"]
        assert sorted(lines[2:]) == [f"task {i}" for i in range(4)]
        assert cell.out.getvalue() == cell.err.getvalue() == ""


def test_an_uncaught_exception_in_a_runs_thread_is_reported_in_the_run() -> None:
    with notebook() as cell:
        def body() -> None:
            t = threading.Thread(target=lambda: 1 / 0)
            t.start()
            t.join(10)

        # The standard hook (pytest's own would collect the exception instead of printing it).
        saved, threading.excepthook = threading.excepthook, threading.__excepthook__
        try:
            output, _ = run_in_job(body)
        finally:
            threading.excepthook = saved
        assert "ZeroDivisionError" in output
        assert cell.err.getvalue() == ""


def test_what_a_thread_writes_after_its_run_ended_is_dropped() -> None:
    with notebook() as cell:
        printed = threading.Event()
        release = threading.Event()
        threads: list[threading.Thread] = []

        def lingering() -> None:
            print("during the run")
            printed.set()
            release.wait(10)
            print("after the run")

        def body() -> None:
            t = threading.Thread(target=lingering, daemon=True)
            threads.append(t)
            t.start()
            printed.wait(10)

        output, cap = run_in_job(body)
        release.set()
        threads[0].join(10)
        assert output == "during the run\n"
        assert cell.out.getvalue() == ""  # not into the cell that runs meanwhile
        assert cap.closed and cap.dropped == len("after the run\n")


def test_a_pool_made_in_a_run_serves_each_submitter_with_its_own_output() -> None:
    with notebook() as cell:
        pools: list[ThreadPoolExecutor] = []

        def first() -> None:  # makes the pool: its thread is started inside this run
            pools.append(ThreadPoolExecutor(1))
            pools[0].submit(print, "from run 1").result(10)

        def second() -> None:
            pools[0].submit(print, "from run 2").result(10)

        out1, _ = run_in_job(first)
        out2, _ = run_in_job(second)
        pools[0].submit(print, "from the cell").result(10)
        pools[0].shutdown()
        assert (out1, out2) == ("from run 1\n", "from run 2\n")
        assert cell.out.getvalue() == "from the cell\n"


def test_a_thread_running_runs_of_its_own_writes_to_the_stream_between_them() -> None:
    with notebook() as cell:
        # An executor's worker thread that happens to be started from inside a job: its runs
        # are captured on their own, and what it writes between them is not the job's.
        inner: list[str] = []

        def worker() -> None:
            capture.begin()
            print("its own run")
            inner.append(capture.end())
            print("between runs")

        def body() -> None:
            t = threading.Thread(target=worker)
            t.start()
            t.join(10)

        output, _ = run_in_job(body)
        assert inner == ["its own run\n"]
        assert output == ""
        assert cell.out.getvalue() == "between runs\n"


def test_uninstall_puts_thread_start_and_pool_submit_back() -> None:
    before = (threading.Thread.start, ThreadPoolExecutor.submit)
    capture.install()
    capture.install()
    assert threading.Thread.start is not before[0]
    capture.uninstall()
    assert threading.Thread.start is not before[0]  # one install is still active
    capture.uninstall()
    assert (threading.Thread.start, ThreadPoolExecutor.submit) == before


def test_a_scheduled_jobs_thread_prints_into_its_run(
    sched: Scheduler, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    def job() -> None:
        t = threading.Thread(target=lambda: print("from the job's thread"))
        t.start()
        t.join(10)

    sched.add_job(job, "every 5s", name="threaded")
    clock.advance(5)
    (run,) = runs_of(sched, "threaded", 1)
    assert run.status is RunStatus.succeeded
    assert run.output == "from the job's thread\n"
    assert "from the job's thread" not in capsys.readouterr().out
