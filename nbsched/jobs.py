"""Value types: :class:`Job` (what + when), :class:`Run` (one execution) and :class:`RunStatus`.

Both are plain dataclasses with no behaviour beyond presentation; the scheduler and the stores
create them. Times inside :class:`Run` are kept as POSIX timestamps (floats) because a busy
scheduler creates thousands of runs a second; the public ``datetime`` attributes are
computed on access.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .abc import Trigger

__all__ = ["CellTarget", "Job", "Run", "RunStatus", "TargetKind"]

TargetKind = Literal["callable", "cell", "notebook"]


@dataclass(frozen=True, slots=True)
class CellTarget:
    """Python source to run in the notebook's namespace (what ``%%schedule`` schedules).

    :param source: the code; it is compiled when the job is added
    """

    source: str


class RunStatus(enum.StrEnum):
    """How a run ended (or ``running`` while it is in flight)."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    #: the fire time passed more than ``misfire_grace_time`` ago, so the body never ran
    missed = "missed"
    #: not started because ``max_instances`` runs of the job were still in flight
    skipped = "skipped"
    #: stopped on purpose (cancel, scheduler shutdown)
    cancelled = "cancelled"
    #: the process running it died
    crashed = "crashed"

    @property
    def finished(self) -> bool:
        """True for every status except ``running``."""
        return self is not RunStatus.running


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job: what to run (``target``) and when (``trigger``), plus run options.

    :param name: unique key of the job in its store
    :param kind: ``"callable"`` (``target`` is ``"module:qualname"``, or ``"__main__:name"``
        for a function defined in a notebook), ``"cell"`` (``target`` is Python source run in
        the notebook's namespace) or ``"notebook"`` (``target`` is a path to an ``.ipynb``)
    :param target: see ``kind``
    :param trigger: when the job fires
    :param executor: ``"thread"``, ``"process"`` or ``"notebook"``
    :param args: positional arguments for a callable target
    :param kwargs: keyword arguments for a callable target
    :param timeout: seconds a run may take before it is stopped and recorded ``timed_out``
    :param max_instances: how many runs of this job may be in flight at once
    :param coalesce: run once (not once per missed fire time) after the scheduler fell behind
    :param misfire_grace_time: seconds a run may start late; later runs are recorded
        ``missed``. ``None`` means no limit
    :param retries: how many times a failed run is tried again
    :param retry_delay: seconds between a failure and its retry
    :param paused: a paused job keeps its schedule but does not fire
    :param next_run_time: the next fire time, ``None`` when paused or finished
    :param parameters: papermill-style parameters of a notebook job
    :param owner: the notebook (or program) the job belongs to; a scheduler runs only the
        jobs of its own owner
    :param created_at: when the job was first added
    :param unbound: the target cannot be resolved right now (a notebook function that has not
        been defined again since the kernel restarted); the job is kept and binds itself later
    """

    name: str
    kind: TargetKind = "callable"
    target: str
    trigger: Trigger
    executor: str = "thread"
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_instances: int = 1
    coalesce: bool = True
    misfire_grace_time: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    paused: bool = False
    next_run_time: datetime | None = None
    parameters: Mapping[str, Any] | None = None
    owner: str | None = None
    created_at: datetime | None = None
    unbound: bool = False

    @property
    def schedule(self) -> str:
        """The schedule in words, e.g. ``"At 09:30, Monday through Friday"``."""
        return self.trigger.describe()

    def __repr__(self) -> str:
        nrt = self.next_run_time.isoformat() if self.next_run_time else None
        extra = " paused" if self.paused else ""
        extra += " unbound" if self.unbound else ""
        return (
            f"<Job {self.name!r} {self.kind}={_short(self.target)!r} "
            f"schedule={self.schedule!r} next={nrt}{extra}>"
        )


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One execution of a job.

    :param id: unique id of the run
    :param job_name: the job it belongs to
    :param status: how it ended, or ``running``
    :param scheduled_ts: the fire time it was run for (POSIX seconds)
    :param started_ts: when the body started, ``None`` if it never did
    :param finished_ts: when it finished, ``None`` while running
    :param output: everything the run printed (stdout and stderr, interleaved)
    :param error: the traceback (or a one-line reason) when it did not succeed
    :param attempt: 0 for the first try, 1.. for retries
    :param owner: owner of the job
    :param output_path: for notebook runs, the executed notebook
    """

    id: str
    job_name: str
    status: RunStatus
    scheduled_ts: float
    started_ts: float | None = None
    finished_ts: float | None = None
    output: str = ""
    error: str | None = None
    attempt: int = 0
    owner: str | None = None
    output_path: str | None = None

    @property
    def scheduled_for(self) -> datetime:
        """The fire time this run was for (aware, UTC)."""
        return _utc(self.scheduled_ts)  # type: ignore[return-value]

    @property
    def started_at(self) -> datetime | None:
        """When the body started (aware, UTC), ``None`` if it never did."""
        return _utc(self.started_ts)

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended (aware, UTC), ``None`` while running."""
        return _utc(self.finished_ts)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, ``None`` if not both known."""
        if self.started_ts is None or self.finished_ts is None:
            return None
        return self.finished_ts - self.started_ts

    @property
    def lateness(self) -> float | None:
        """Seconds between the fire time and the start of the body."""
        return None if self.started_ts is None else self.started_ts - self.scheduled_ts

    def __repr__(self) -> str:
        return (
            f"<Run {self.job_name!r} {self.status.value} "
            f"scheduled_for={self.scheduled_for.isoformat()} id={self.id}>"
        )
