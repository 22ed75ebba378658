"""The scheduler's side of the executor contract, for tests that drive a
``ProcessJobExecutor`` directly: a :class:`Recorder` of what it reports, and requests and
jobs to give it."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nbsched.abc import RunRequest, Trigger
from nbsched.jobs import Job, RunStatus

__all__ = ["Finished", "NeverTrigger", "Recorder", "make_job", "make_request"]


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
    return Job(
        name=name,
        target="tests.process._jobs:add",
        trigger=NeverTrigger(),
        executor="process",
        args=args,
        kwargs=dict(kwargs or {}),
    )
