"""ProcessJobExecutor against the executor contract, with real worker processes."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from nbsched._clock import SystemClock
from nbsched.errors import InvalidArgumentError, NotPicklableError
from nbsched.executors.process import ProcessJobExecutor
from nbsched.jobs import RunStatus
from tests.helpers.processes import alive, marked, read_pids, wait_dead, wait_no_marked
from tests.helpers.wait import wait_for

from . import _jobs
from ._recorder import Recorder, make_job, make_request

pytestmark = pytest.mark.slow


def run(executor: ProcessJobExecutor, recorder: Recorder, func, *args, **kw):  # type: ignore[no-untyped-def]
    req = make_request(func, *args, **kw)
    executor.submit(req)
    return recorder.wait(req.run_id)


# -- what runs -----------------------------------------------------------------------------------


def test_module_function(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    req = make_request(_jobs.add, 2, 3)
    executor.submit(req)
    done = recorder.wait(req.run_id)
    assert done.status is RunStatus.succeeded, done.error
    assert done.output == "2 + 3 = 5\n"
    assert done.error is None
    assert req.run_id in recorder.started  # on_started came first
    assert req.started_ts is not None and req.started_ts <= done.finished_ts


def test_lambda_and_closure(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    offset = 40

    def closure(x: int) -> None:
        print(x + offset)

    assert run(executor, recorder, lambda: print("lambda ran")).output == "lambda ran\n"
    assert run(executor, recorder, closure, 2).output == "42\n"


def test_cell_defined_function_and_class(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    # What a notebook cell defines lives in __main__, which a worker cannot import.
    cell = {"__name__": "__main__"}
    exec(
        "def double(x):\n"
        "    print(2 * x)\n"
        "class Greeter:\n"
        "    def __init__(self, name):\n"
        "        self.name = name\n"
        "    def greet(self, greeting):\n"
        "        print(greeting, self.name)\n",
        cell,
    )
    assert cell["double"].__module__ == "__main__"
    assert run(executor, recorder, cell["double"], 21).output == "42\n"
    method = cell["Greeter"]("world").greet
    assert run(executor, recorder, method, "hello").output == "hello world\n"


def test_target_reference_is_resolved_in_the_worker(
    executor: ProcessJobExecutor, recorder: Recorder
) -> None:
    done = run(executor, recorder, None, 1, 1, target="tests.process._jobs:add")
    assert (done.status, done.output) == (RunStatus.succeeded, "1 + 1 = 2\n")
    bad = run(executor, recorder, None, target="tests.process._jobs:missing")
    assert bad.status is RunStatus.failed
    assert "no attribute 'missing'" in (bad.error or "")
    assert bad.request.started_ts is None  # the body never started


def test_failure_reports_the_traceback(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    done = run(executor, recorder, _jobs.fail, "boom")
    assert done.status is RunStatus.failed
    assert done.error is not None
    assert done.error.startswith("Traceback (most recent call last):")
    assert "in fail" in done.error and done.error.rstrip().endswith("ValueError: boom")
    assert "_worker.py" not in done.error  # starts at the job, not in our worker loop
    exit_req = run(executor, recorder, lambda: sys.exit(3))
    assert exit_req.status is RunStatus.failed and "SystemExit: 3" in (exit_req.error or "")


class _LoadBomb:
    """Pickles fine, fails to unpickle in the worker."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_jobs.fail, ("cannot load this argument",))


def test_bad_payload_fails_that_run_only(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    before = run(executor, recorder, os.getpid)
    bad = run(executor, recorder, _jobs.add, _LoadBomb(), 1)
    assert bad.status is RunStatus.failed
    assert "Could not load the job" in (bad.error or "")
    assert "cannot load this argument" in (bad.error or "")
    after = run(executor, recorder, _jobs.add, 1, 1)
    assert after.status is RunStatus.succeeded
    assert before.status is RunStatus.succeeded
    assert len(executor.worker_pids()) == 1  # the same worker served all three


def test_unpicklable_request_is_reported_failed(
    executor: ProcessJobExecutor, recorder: Recorder
) -> None:
    done = run(executor, recorder, _jobs.add, threading.Lock(), 1)
    assert done.status is RunStatus.failed
    assert "Cannot send the job to a worker process" in (done.error or "")


def test_validate(executor: ProcessJobExecutor) -> None:
    executor.validate(make_job("ok", (1, 2)), _jobs.add)
    executor.validate(make_job("lambda"), lambda: None)
    with pytest.raises(NotPicklableError) as err:
        executor.validate(make_job("locked", (1, threading.Lock())), _jobs.add)
    msg = str(err.value)
    assert "'locked'" in msg and "argument 1 (lock)" in msg and "executor='thread'" in msg
    assert "\n" not in msg
    with pytest.raises(TypeError):  # NotPicklableError is a TypeError too
        executor.validate(make_job("kw", kwargs={"lock": threading.Lock()}), _jobs.add)


def test_constructor_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="fork is never used"):
        ProcessJobExecutor(start_method="fork")
    with pytest.raises(InvalidArgumentError, match="max_workers"):
        ProcessJobExecutor(0)
    assert ProcessJobExecutor().start_method == "forkserver"


# -- the worker process ---------------------------------------------------------------------------


def _facts(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines())


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_worker_setup(
    method: str, make_executor: Callable[..., ProcessJobExecutor], recorder: Recorder
) -> None:
    ex = make_executor(1, start_method=method)
    done = run(ex, recorder, _jobs.worker_facts)
    facts = _facts(done.output)
    assert facts["pgid"] == facts["pid"]  # own process group
    assert os.getpgid(int(facts["pid"])) != os.getpgrp()
    assert facts["marker"] == str(os.getpid())
    assert facts["sigint_ignored"] == "True" and facts["sigterm_default"] == "True"
    # launched with SIGINT blocked (so the kernel's group SIGINT cannot kill it while it
    # starts), it unblocks it once ignored: the job's processes get a plain signal mask
    assert facts["blocked"] == "[]"
    assert facts["pdeathsig"] == str(int(signal.SIGKILL))
    worker = psutil.Process(int(facts["pid"]))
    assert worker.environ().get("NBSCHED_WORKER") == str(os.getpid())  # findable by tests


def test_output_is_captured_at_fd_level(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    done = run(executor, recorder, _jobs.noisy)
    assert done.output == (
        "from print\nfrom fd 1\nfrom stderr\nfrom a grandchild\nlast line"
    )
    again = run(executor, recorder, _jobs.add, 1, 2)
    assert again.output == "1 + 2 = 3\n"  # each run starts with an empty output


# -- cancel, timeouts, crashes ------------------------------------------------------------------


@pytest.mark.parametrize("status", [RunStatus.timed_out, RunStatus.cancelled])
def test_cancel_kills_the_whole_tree(
    status: RunStatus, executor: ProcessJobExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    pidfile = str(tmp_path / "pids")
    # the grandchild ignores SIGTERM: only the SIGKILL escalation removes it
    req = make_request(_jobs.tree, pidfile, 600, True, timeout=1.5)
    executor.submit(req)
    worker, grandchild = read_pids(pidfile)
    recorder.wait_started(req.run_id)
    assert executor.cancel(req.run_id, status) is True
    done = recorder.finished[req.run_id]  # reported before cancel() returned
    assert done.status is status
    assert "tree started" in done.output  # what it printed before it was killed
    if status is RunStatus.timed_out:
        assert "exceeded its timeout of 1.5 s" in (done.error or "")
    wait_dead([worker, grandchild])
    assert executor.cancel(req.run_id) is False  # not running any more
    # the pool replaced the worker and keeps working
    after = run(executor, recorder, _jobs.add, 2, 2)
    assert after.status is RunStatus.succeeded
    assert worker not in executor.worker_pids()


def test_cancel_a_queued_run(
    make_executor: Callable[..., ProcessJobExecutor], recorder: Recorder, tmp_path: Path
) -> None:
    ex = make_executor(1)
    busy = make_request(_jobs.tree, str(tmp_path / "pids"))
    queued = make_request(_jobs.add, 1, 1)
    ex.submit(busy)
    ex.submit(queued)
    read_pids(tmp_path / "pids")
    assert ex.cancel(queued.run_id) is True
    done = recorder.finished[queued.run_id]
    assert done.status is RunStatus.cancelled and "had not started" in (done.error or "")
    assert busy.run_id not in recorder.finished
    assert ex.cancel(busy.run_id) is True


@pytest.mark.parametrize(
    ("job", "arg", "reason"),
    [(_jobs.exit_with, 3, "exited with code 3"), (_jobs.kill_self, 9, "killed by SIGKILL")],
)
def test_worker_crash_is_reported(
    job, arg, reason, executor: ProcessJobExecutor, recorder: Recorder  # type: ignore[no-untyped-def]
) -> None:
    done = run(executor, recorder, job, arg)
    assert done.status is RunStatus.crashed
    assert reason in (done.error or "")
    assert run(executor, recorder, _jobs.add, 1, 1).status is RunStatus.succeeded


def test_sigint_to_a_worker_does_not_stop_its_job(
    executor: ProcessJobExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    req = make_request(_jobs.tree, str(tmp_path / "pids"))
    executor.submit(req)
    worker, grandchild = read_pids(tmp_path / "pids")
    os.killpg(worker, signal.SIGINT)  # what a notebook interrupt would do to its group
    # Prove the signal was handled (ignored) rather than merely pending: a run submitted
    # after it is served by the other worker while this one keeps its job.
    assert run(executor, recorder, _jobs.add, 1, 1).status is RunStatus.succeeded
    assert alive(psutil.Process(worker)) and alive(psutil.Process(grandchild))
    assert req.run_id not in recorder.finished


# -- shutdown and the reaper ----------------------------------------------------------------------


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_with_a_running_job(
    wait: bool, executor: ProcessJobExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    req = make_request(_jobs.tree, str(tmp_path / "pids"), 30)
    executor.submit(req)
    worker, grandchild = read_pids(tmp_path / "pids")
    reaper = executor.reaper_pid
    assert reaper is not None
    executor.shutdown(wait=wait)
    done = recorder.finished[req.run_id]
    assert done.status is RunStatus.cancelled and "tree started" in done.output
    wait_dead([worker, grandchild, reaper], timeout=5)
    wait_no_marked(os.getpid(), timeout=5)  # forkserver and resource tracker included
    me = psutil.Process()
    assert not [c for c in me.children() if c.pid in (worker, reaper)]  # reaped, no zombies
    executor.shutdown()  # idempotent
    late = make_request(_jobs.add, 1, 1)
    executor.submit(late)
    assert recorder.wait(late.run_id).status is RunStatus.cancelled


def test_shutdown_kills_a_job_that_ignores_sigterm(
    executor: ProcessJobExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    req = make_request(_jobs.stubborn, str(tmp_path / "pids"))
    executor.submit(req)
    worker, grandchild = read_pids(tmp_path / "pids")
    executor.shutdown()  # SIGTERM is ignored: the bounded grace ends in SIGKILL
    assert recorder.finished[req.run_id].status is RunStatus.cancelled
    wait_dead([worker, grandchild], timeout=5)


def test_start_again_after_shutdown(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    first = run(executor, recorder, os.getpid)
    executor.shutdown()
    executor.start(SystemClock(), recorder.on_started, recorder.on_finished)  # Scheduler.start()
    second = run(executor, recorder, _jobs.add, 1, 1)
    assert (first.status, second.status) == (RunStatus.succeeded, RunStatus.succeeded)


def test_reaper_is_restarted(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    assert run(executor, recorder, _jobs.add, 1, 1).status is RunStatus.succeeded
    first = executor.reaper_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: executor.reaper_pid not in (None, first), 10, "a new reaper")
    new = psutil.Process(executor.reaper_pid)  # type: ignore[arg-type]
    assert alive(new) and new.environ().get("NBSCHED_REAPER") == str(os.getpid())
    assert os.getsid(new.pid) == new.pid  # its own session


def test_marked_processes_are_ours(executor: ProcessJobExecutor, recorder: Recorder) -> None:
    assert run(executor, recorder, _jobs.add, 1, 1).status is RunStatus.succeeded
    pids = {p.pid for p in marked(os.getpid())}
    assert set(executor.worker_pids()) <= pids
    assert executor.reaper_pid in pids


def test_output_so_far_while_the_run_goes_on(
    make_executor: Callable[..., ProcessJobExecutor], recorder: Recorder, tmp_path: Path
) -> None:
    executor = make_executor(1)  # one worker: the live run reuses the file of the first
    assert run(executor, recorder, _jobs.add, 2, 3).output == "2 + 3 = 5\n"
    go = tmp_path / "go"
    req = make_request(_jobs.print_then_wait, "partial", str(go))
    executor.submit(req)
    expected = "partial\npartial via fd\npartial via a grandchild\n"
    try:
        wait_for(lambda: executor.output_so_far(req.run_id) == expected, 30, "the live output")
        assert req.run_id not in recorder.finished
    finally:
        go.touch()
    done = recorder.wait(req.run_id)
    assert done.status is RunStatus.succeeded, done.error
    assert done.output == expected + "done\n"  # the live reads took nothing away
    assert executor.output_so_far(req.run_id) is None
    assert executor.output_so_far("no-such-run") is None


def test_a_run_cancelled_before_it_started_gets_none_of_the_previous_runs_output(
    make_executor: Callable[..., ProcessJobExecutor], recorder: Recorder
) -> None:
    executor = make_executor(1)  # one worker, one output file for both runs
    assert run(executor, recorder, _jobs.add, 2, 3).output == "2 + 3 = 5\n"
    (pid,) = executor.worker_pids()
    # Stopped, the worker takes the next run only when continued: the run is its own, but
    # it has not emptied the file nor said it started.
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 10, "SIGSTOP")
        req = make_request(_jobs.add, 1, 1)
        executor.submit(req)
        assert executor.output_so_far(req.run_id) is None
        assert executor.cancel(req.run_id) is True
    finally:
        os.kill(pid, signal.SIGCONT)  # (SIGTERM, pending meanwhile, then ends it)
    done = recorder.finished[req.run_id]
    assert done.status is RunStatus.cancelled
    assert done.output == ""
    assert "killed" in (done.error or "")  # it was the worker's: not cancelled from the queue
    wait_dead([pid])
    assert run(executor, recorder, _jobs.add, 1, 2).status is RunStatus.succeeded
