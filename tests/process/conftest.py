"""Fixtures for the process executor: a started executor with a recording callback pair, and
psutil helpers that find job processes by their marker environment variable.

Every wait here is a bounded wait on a condition (a process is gone, a run was reported);
nothing sleeps and hopes.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil
import pytest

from nbsched._clock import SystemClock
from nbsched.abc import RunRequest, Trigger
from nbsched.executors.process import ProcessJobExecutor
from nbsched.jobs import Job, RunStatus

WORKER_ENV = "NBSCHED_WORKER"
REAPER_ENV = "NBSCHED_REAPER"


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "", poll: float = 0.01
) -> None:
    """Wait, with a bound, until ``predicate()`` is true (polling every ``poll`` s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(poll)


# -- processes ---------------------------------------------------------------------------------


def alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is dead; only its parent's wait() is missing)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def marked(owner_pid: int, variables: Iterable[str] = (WORKER_ENV, REAPER_ENV)) -> list[psutil.Process]:
    """Live processes whose environment carries one of ``variables`` = ``owner_pid``: every
    job process (workers, their children; the forkserver and resource tracker when nbsched
    started them) and the reaper of the process ``owner_pid``."""
    token = str(owner_pid)
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info.get("environ") or {}
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(env.get(var) == token for var in variables):
            found.append(proc)
    return found


def wait_no_marked(owner_pid: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until no process marked with ``owner_pid`` is alive."""
    last: list[psutil.Process] = []

    def none_left() -> bool:
        nonlocal last
        last = [p for p in marked(owner_pid) if alive(p)]
        return not last

    try:
        # a scan reads every process's environment (~10 ms): poll gently, the box is shared
        wait_for(none_left, timeout, f"job processes of pid {owner_pid} to exit", poll=0.05)
    except AssertionError:
        desc = [_describe(p) for p in last]
        raise AssertionError(f"processes of pid {owner_pid} still alive: {desc}") from None


def wait_dead(pids: Iterable[int], timeout: float = 10.0) -> None:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    wait_for(lambda: not any(alive(p) for p in procs), timeout, f"pids {list(pids)} to exit")


def kill_marked(owner_pid: int) -> list[str]:
    """Teardown: SIGKILL whatever is left (by psutil object, so a reused pid is never hit)."""
    left = [p for p in marked(owner_pid) if alive(p)]
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    return [_describe(p) for p in left]


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid}:{' '.join(proc.cmdline())[:80]}"
    except psutil.Error:
        return str(proc.pid)


def read_pids(path: os.PathLike[str] | str, timeout: float = 20.0) -> list[int]:
    """Wait for a job's pid file (see ``_jobs.tree``) and return its pids."""
    wait_for(lambda: os.path.exists(path), timeout, f"pid file {path}")
    with open(path) as f:
        return [int(x) for x in f.read().split()]


# -- executor ------------------------------------------------------------------------------------


@dataclass
class Finished:
    request: RunRequest
    status: RunStatus
    output: str
    error: str | None
    finished_ts: float


class Recorder:
    """The scheduler's side of the executor contract, recording what the executor reports."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.started: list[str] = []
        self.finished: dict[str, Finished] = {}
        self.duplicates: list[str] = []

    def on_started(self, request: RunRequest) -> None:
        with self.cond:
            self.started.append(request.run_id)
            self.cond.notify_all()

    def on_finished(
        self,
        request: RunRequest,
        status: RunStatus,
        output: str,
        error: str | None,
        finished_ts: float,
    ) -> None:
        with self.cond:
            if request.run_id in self.finished:
                self.duplicates.append(request.run_id)  # contract: exactly once
            self.finished[request.run_id] = Finished(request, status, output, error, finished_ts)
            self.cond.notify_all()

    def wait(self, run_id: str, timeout: float = 30.0) -> Finished:
        with self.cond:
            ok = self.cond.wait_for(lambda: run_id in self.finished, timeout)
        assert ok, f"run {run_id} was not reported within {timeout} s"
        return self.finished[run_id]

    def wait_started(self, run_id: str, timeout: float = 30.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: run_id in self.started, timeout)
        assert ok, f"run {run_id} did not start within {timeout} s"


_ids = itertools.count()


def make_request(
    func: Callable[..., Any] | None,
    *args: Any,
    target: str = "",
    timeout: float | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> RunRequest:
    run_id = f"r{next(_ids)}"
    return RunRequest(
        run_id, "job", func, target, args, dict(kwargs or {}), time.time(), timeout, 0, None
    )


class NeverTrigger(Trigger):
    """Enough of a trigger to build a :class:`Job` for ``validate()``."""

    type_name = "never"

    def next_fire_time(self, after: datetime) -> datetime | None:
        return None

    def describe(self) -> str:
        return "never"

    def to_state(self) -> dict[str, Any]:
        return {"version": 1, "type": self.type_name}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Trigger:
        return cls()


def make_job(name: str, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> Job:
    return Job(name=name, target="tests.process._jobs:add", trigger=NeverTrigger(),
               executor="process", args=args, kwargs=dict(kwargs or {}))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_executor(recorder: Recorder) -> Iterator[Callable[..., ProcessJobExecutor]]:
    """Factory for started executors; every one is shut down at teardown, and no job process
    of this test process may survive it."""
    made: list[ProcessJobExecutor] = []

    def make(max_workers: int = 2, **kwargs: Any) -> ProcessJobExecutor:
        ex = ProcessJobExecutor(max_workers, **kwargs)
        ex.start(SystemClock(), recorder.on_started, recorder.on_finished)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown()
    try:
        wait_no_marked(os.getpid(), timeout=10)
    finally:
        left = kill_marked(os.getpid())
    assert not left, f"job processes survived shutdown: {left}"
    assert not recorder.duplicates, f"runs reported twice: {recorder.duplicates}"


@pytest.fixture
def executor(make_executor: Callable[..., ProcessJobExecutor]) -> ProcessJobExecutor:
    return make_executor(2)
