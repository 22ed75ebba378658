"""Events the scheduler publishes to listeners (``Scheduler.add_listener``).

All are frozen dataclasses with a ``timestamp`` (POSIX seconds, from the scheduler's clock).
Listeners run on the thread that caused the event (the loop thread, a worker thread, or the
caller of an API method); an exception in a listener is logged and never reaches the
scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from .jobs import Job, Run

__all__ = [
    "Event",
    "JobEvent",
    "JobAdded",
    "JobUpdated",
    "JobRemoved",
    "JobPaused",
    "JobResumed",
    "JobBound",
    "RunStarted",
    "RunFinished",
    "RunProgress",
    "SchedulerStarted",
    "SchedulerStopped",
    "SchedulerFault",
    "SchedulerRecovered",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of every event."""

    timestamp: float


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent(Event):
    """Something happened to a job."""

    job_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAdded(JobEvent):
    """A job was added."""

    job: Job


@dataclass(frozen=True, slots=True, kw_only=True)
class JobUpdated(JobEvent):
    """A job was replaced (``replace_existing``) or changed from outside."""

    job: Job


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRemoved(JobEvent):
    """A job was removed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPaused(JobEvent):
    """A job was paused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResumed(JobEvent):
    """A paused job was resumed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobBound(JobEvent):
    """An unbound job's target could be resolved again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(JobEvent):
    """A run's body started."""

    run_id: str
    scheduled_ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(JobEvent):
    """A run ended (any status but ``running``), including ``missed`` and ``skipped``."""

    run: Run


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProgress(JobEvent):
    """A notebook run finished one more code cell (also sent once at its start, with 0)."""

    run_id: str
    cells_done: int
    cells_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStarted(Event):
    """The scheduler's loop started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStopped(Event):
    """The scheduler stopped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerFault(Event):
    """The loop or the store failed; the scheduler retries with backoff."""

    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerRecovered(Event):
    """The fault reported by the last :class:`SchedulerFault` cleared."""
