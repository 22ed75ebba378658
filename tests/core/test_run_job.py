"""``run_job`` never holds its caller longer than it was told to, nor past an interrupt: the
run goes on in the background and keeps its record."""

from __future__ import annotations

import inspect
import signal
import sys
import threading

import pytest

from nbsched import InvalidArgumentError, NbschedError, RunStatus, Scheduler
from nbsched.errors import RunStillRunningError
from tests.helpers.wait import wait_for


def _hanging(started: threading.Event, release: threading.Event) -> None:
    started.set()
    release.wait(30)


def test_run_job_waits_a_bounded_time_by_default() -> None:
    default = inspect.signature(Scheduler.run_job).parameters["wait"].default
    assert isinstance(default, float) and 0 < default <= 600


def test_a_run_still_going_after_wait_raises_and_keeps_running(sched: Scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    sched.add_job(_hanging, "every 1h", name="hang", args=(started, release))
    try:
        with pytest.raises(RunStillRunningError) as info:
            sched.run_job("hang", wait=0.2)
        error = info.value
        assert isinstance(error, NbschedError) and isinstance(error, TimeoutError)
        assert error.job_name == "hang"
        message = str(error)
        assert "still running after 0.2 s" in message
        assert f"cancel_run({error.run_id!r})" in message and "get_runs('hang')" in message
        (run,) = sched.get_runs("hang")
        assert run.id == error.run_id and run.status is RunStatus.running
        assert sched.status()["running_runs"] == 1
    finally:
        release.set()
    wait_for(
        lambda: sched.get_runs("hang")[0].status is RunStatus.succeeded, 10, "the run to end"
    )
    assert sched._engine.loop.waiters == {}  # nobody is left waiting for it


def test_a_run_that_ends_in_time_is_returned(sched: Scheduler) -> None:
    sched.add_job("json:dumps", "every 1h", name="quick", args=([1],))
    run = sched.run_job("quick", wait=10)
    assert run.status is RunStatus.succeeded and run.job_name == "quick"


@pytest.mark.parametrize("bad", [-1, "5", True])
def test_a_bad_wait_is_refused_and_nothing_runs(sched: Scheduler, bad: object) -> None:
    sched.add_job("json:dumps", "every 1h", name="quick", args=([1],))
    with pytest.raises(InvalidArgumentError, match="wait must be None or seconds"):
        sched.run_job("quick", wait=bad)  # type: ignore[arg-type]
    assert sched.get_runs("quick") == []


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill is POSIX")
def test_an_interrupt_frees_the_caller_at_once_and_the_run_goes_on(sched: Scheduler) -> None:
    """The notebook's stop button sends SIGINT to the kernel's main thread while it waits."""
    main = threading.main_thread()
    assert threading.current_thread() is main
    started, release = threading.Event(), threading.Event()
    sched.add_job(_hanging, "every 1h", name="hang", args=(started, release))

    def interrupt() -> None:
        started.wait(10)
        # once the caller is blocked in the wait itself
        wait_for(
            lambda: (f := sys._current_frames().get(main.ident or 0)) is not None
            and f.f_code.co_name == "wait",
            10,
            "run_job to wait",
        )
        signal.pthread_kill(main.ident or 0, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt, name="test-interrupter")
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sched.run_job("hang", wait=None)  # no bound: only the interrupt ends the wait
        interrupter.join(10)
        assert sched._engine.loop.waiters == {}
        assert sched.status()["running_runs"] == 1
        (run,) = sched.get_runs("hang")
        assert run.status is RunStatus.running
    finally:
        release.set()
        interrupter.join(10)
    wait_for(
        lambda: sched.get_runs("hang")[0].status is RunStatus.succeeded, 10, "the run to end"
    )


def test_run_output_shows_a_run_in_flight_then_its_record_has_it(sched: Scheduler) -> None:
    said, release = threading.Event(), threading.Event()

    def chatty() -> None:
        print("hello")
        said.set()
        release.wait(30)
        print("bye")

    sched.add_job(chatty, "every 1h", name="chatty")
    run_id = sched.start_run("chatty")
    try:
        wait_for(said.is_set, 10, "the run to print")
        assert sched.run_output(run_id) == "hello\n"
        assert sched.get_runs("chatty")[0].status is RunStatus.running
    finally:
        release.set()
    wait_for(lambda: sched.get_runs("chatty")[0].status is RunStatus.succeeded, 10, "the end")
    assert sched.run_output(run_id) is None
    assert sched.get_runs("chatty")[0].output == "hello\nbye\n"
    assert sched.run_output("no-such-run") is None
    with pytest.raises(InvalidArgumentError, match="run_id must be a run id"):
        sched.run_output(None)  # type: ignore[arg-type]
