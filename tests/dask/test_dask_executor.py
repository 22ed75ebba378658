"""The Dask executor on real clusters: a ``LocalCluster`` of worker processes, and a scheduler
process of our own for the cluster-going-away path. Runs go through a real ``Scheduler``."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nbsched import RunStatus, Scheduler
from nbsched.executors.dask import DaskJobExecutor
from tests.dask.conftest import free_port
from tests.helpers.processes import pid_alive
from tests.helpers.wait import wait_for

distributed = pytest.importorskip("distributed")  # declared in the test extra: never skips
pytestmark = pytest.mark.slow


def _start_in_background(s: Scheduler, name: str) -> tuple[threading.Thread, list[Any]]:
    """``run_job`` in a thread (it returns when the run ends); the list gets its Run."""
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(s.run_job(name)), daemon=True)
    t.start()
    return t, result


def test_a_run_succeeds_with_its_output(sched: Scheduler) -> None:
    greeting = "hello from a cell"  # a closure: the function travels by value

    def job() -> None:
        print(greeting, flush=True)
        os.system("echo from a subprocess")  # fd-level output is captured too

    sched.add_job(job, "every 1h", name="hello", executor="dask")
    run = sched.run_job("hello")
    assert run.status is RunStatus.succeeded, run.error
    assert "hello from a cell" in run.output
    assert "from a subprocess" in run.output
    assert run.started_at is not None and run.finished_at is not None


def test_a_failing_run_keeps_its_traceback(sched: Scheduler) -> None:
    def job() -> None:
        raise ValueError("bad input on the worker")

    sched.add_job(job, "every 1h", name="fails", executor="dask")
    run = sched.run_job("fails")
    assert run.status is RunStatus.failed
    assert run.error is not None and "ValueError: bad input on the worker" in run.error


def test_a_timeout_stops_the_run_on_the_worker_and_the_worker_stays_usable(
    sched: Scheduler, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"

    def hang(path: str) -> None:
        child = subprocess.Popen(["sleep", "600"])
        print("until the timeout", flush=True)
        Path(path).write_text(f"{os.getpid()} {child.pid}")
        time.sleep(600)

    sched.add_job(hang, "every 1h", name="hang", executor="dask", timeout=1.5, args=(str(pidfile),))
    run = sched.run_job("hang")
    assert run.status is RunStatus.timed_out
    assert run.output == "until the timeout\n"  # what it printed before it was stopped
    pids = [int(p) for p in pidfile.read_text().split()]
    wait_for(lambda: not any(map(pid_alive, pids)), 5, "the run's process tree to be killed")

    for i in range(2):  # both workers (one thread each) still take work
        sched.add_job(lambda: print("after"), "every 1h", name=f"after{i}", executor="dask")
        assert sched.run_job(f"after{i}").status is RunStatus.succeeded


def test_cancel_run_stops_a_running_run(sched: Scheduler, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    def slow(path: str) -> None:
        print("until the cancel", flush=True)
        Path(path).write_text(str(os.getpid()))
        time.sleep(600)

    sched.add_job(slow, "every 1h", name="slow", executor="dask", args=(str(pidfile),))
    t, result = _start_in_background(sched, "slow")
    wait_for(pidfile.exists, 20, "the run to start on a worker")
    running = [r for r in sched.get_runs("slow") if r.status is RunStatus.running]
    assert len(running) == 1
    sched.cancel_run(running[0].id)
    t.join(10)
    assert result and result[0].status is RunStatus.cancelled
    assert result[0].output == "until the cancel\n"  # what it printed before it was stopped
    wait_for(lambda: not pid_alive(int(pidfile.read_text())), 5, "the run's process to go")


def test_a_job_that_cannot_be_pickled_is_refused_when_added(sched: Scheduler) -> None:
    lock = threading.Lock()
    with pytest.raises(Exception, match="cannot be sent to a Dask worker"):
        sched.add_job(
            lambda: lock, "every 1h", name="lock", executor="dask", args=(threading.Lock(),)
        )
    assert [j.name for j in sched.get_jobs()] == []


# -- the cluster going away ----------------------------------------------------------------


def test_losing_the_cluster_is_a_fault_not_a_zombie(
    own_cluster: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    address, scheduler_proc, _ = own_cluster
    executor = DaskJobExecutor(address)
    s = Scheduler(timezone="UTC", executors={"dask": executor})
    s.start()
    try:
        wait_for(
            lambda: executor.fault() is None and executor._client is not None,
            30,
            "the executor to connect",
        )
        executor._client.wait_for_workers(1, timeout=30)
        started = tmp_path / "started"
        s.add_job(
            lambda: (started.touch(), time.sleep(600)), "every 1h", name="long", executor="dask"
        )
        t, result = _start_in_background(s, "long")
        wait_for(started.exists, 30, "the run to start")

        scheduler_proc.kill()
        t.join(20)
        assert result, "run_job did not return after the cluster went away"
        assert result[0].status is RunStatus.crashed
        assert "Lost the Dask scheduler" in (result[0].error or "")
        assert executor.fault() is not None
        status = s.status()  # a lost cluster is a fault like a lost store: shown, not hidden
        assert not status["healthy"] and "Lost the Dask scheduler" in (status["error"] or "")

        # a run while the cluster is down is recorded with the reason, not queued silently
        s.add_job(lambda: None, "every 1h", name="while-down", executor="dask")
        down = s.run_job("while-down")
        assert down.status is RunStatus.failed
        assert down.error and "Dask" in down.error
    finally:
        began = time.monotonic()
        s.shutdown()
        assert time.monotonic() - began < 5, "shutdown waited on the unreachable cluster"


def test_an_unreachable_address_is_retried_and_shown(tmp_path: Path) -> None:
    executor = DaskJobExecutor(f"tcp://127.0.0.1:{free_port()}")  # nothing listens there
    s = Scheduler(timezone="UTC", executors={"dask": executor})
    s.start()
    try:
        wait_for(lambda: executor.fault() is not None, 30, "the fault to be known")
        assert "Cannot reach the Dask scheduler" in (executor.fault() or "")
        assert not s.status()["healthy"]
    finally:
        began = time.monotonic()
        s.shutdown()
        assert time.monotonic() - began < 5
