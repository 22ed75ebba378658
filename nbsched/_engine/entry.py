"""The in-memory state the engine keeps per job (:class:`Entry`) and per caller waiting for
a run (:class:`Waiter`). Plain slotted records: with ten thousand jobs every byte counts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..abc import Executor
from ..jobs import Job, Run

__all__ = ["Entry", "Waiter"]


class Entry:
    """Scheduling state of one job (guarded by the loop's ``cond``)."""

    __slots__ = ("job", "func", "next_ts", "running", "executor", "early_until")

    def __init__(self, job: Job, func: Callable[..., Any] | None, executor: Executor) -> None:
        self.job = job
        self.func = func
        self.next_ts: float | None = None
        self.running = 0
        self.executor = executor
        #: the fire time of a run handed over early; the store keeps it as the job's next
        #: run time until then (see ``Loop.take_next_run_times``)
        self.early_until = 0.0


class Waiter:
    """Someone waiting for one run to end (``run_job``, ``cancel_run``)."""

    __slots__ = ("event", "run")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.run: Run | None = None
