"""What the panel shows, as plain frozen data: no widgets, no threads.

:func:`snapshot` turns a scheduler (through its public API only) plus a
:class:`~.runbook.RunBook` into a :class:`PanelState`; the view renders that and nothing
else. :class:`Throttle` decides when the next refresh is due. Both take the time as an
argument, so tests drive them with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from ..display import fmt_duration, fmt_relative, tidy_error
from ..jobs import Job, Run, RunStatus
from .runbook import Mark, RunBook

if TYPE_CHECKING:
    from ..scheduler import Scheduler

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "JobRow",
    "UpcomingRow",
    "RunRow",
    "RunDetail",
    "TimelineLane",
    "PanelState",
    "Throttle",
    "snapshot",
    "job_state",
]

#: bumped whenever a field of the dataclasses below changes meaning (a front end that
#: serializes these checks it)
SCHEMA_VERSION = 1

JobStateName = Literal["active", "paused", "unbound", "running", "failing", "finished"]
#: the states a job can be in, in the order the state filter offers them
STATES: tuple[JobStateName, ...] = ("active", "running", "failing", "paused", "unbound", "finished")
_FAILING = frozenset({RunStatus.failed, RunStatus.timed_out, RunStatus.crashed})


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as the jobs table shows it (texts ready to show, plus what the buttons need)."""

    name: str
    state: JobStateName
    schedule: str
    kind: str
    next_ts: float | None
    next_in: str
    next_at: str
    last_status: str
    last_when: str
    last_duration: str
    paused: bool
    unbound: bool
    running_run_id: str | None


@dataclass(frozen=True, slots=True)
class UpcomingRow:
    """One coming fire time."""

    job_name: str
    ts: float
    at: str
    countdown: str
    schedule: str


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of the history list."""

    id: str
    job_name: str
    status: str
    started: str
    duration: str
    progress: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class RunDetail:
    """The selected run: its output, error and (notebook runs) progress and executed copy."""

    id: str
    job_name: str
    status: str
    started: str
    duration: str
    output: str
    error: str
    output_path: str | None
    progress: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class TimelineLane:
    """One job's row of the timeline: recent runs and the next fire times."""

    job_name: str
    marks: tuple[Mark, ...]
    ahead: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class PanelState:
    """Everything the panel shows at one moment.

    :param version: :data:`SCHEMA_VERSION`
    :param now: POSIX time of the snapshot
    :param running: the scheduler is running
    :param healthy: no fault is reported
    :param error: the fault, if any
    :param counts: number of jobs per state (all jobs, before filtering)
    :param total: number of jobs
    :param matching: jobs that pass the filter and the search
    :param jobs: the first ``max_rows`` of those
    :param upcoming: the next fire times, soonest first
    :param runs: recent runs, newest first (in flight ones included)
    :param detail: the selected run, if any
    :param lanes: timeline rows for the jobs shown
    :param window: the timeline's (start, end) in POSIX seconds
    """

    version: int
    now: float
    running: bool
    healthy: bool
    error: str | None
    counts: Mapping[str, int]
    total: int
    matching: int
    jobs: tuple[JobRow, ...]
    upcoming: tuple[UpcomingRow, ...]
    runs: tuple[RunRow, ...]
    detail: RunDetail | None
    lanes: tuple[TimelineLane, ...]
    window: tuple[float, float]


def job_state(job: Job, last: Run | None, running: bool) -> JobStateName:
    """The one word the jobs table shows: ``unbound`` and ``running`` win over ``paused``,
    which wins over ``failing`` (the last run failed, timed out or crashed)."""
    if job.unbound:
        return "unbound"
    if running:
        return "running"
    if job.paused:
        return "paused"
    if last is not None and last.status in _FAILING:
        return "failing"
    if job.next_ts is None:
        return "finished"
    return "active"


class Throttle:
    """When the panel should refresh: soon after a change, but at most once per
    ``min_interval``; and every ``tick`` seconds anyway, so that countdowns move.

    :param min_interval: seconds between two refreshes, at least
    :param tick: seconds between two refreshes, at most
    """

    def __init__(self, min_interval: float = 0.5, tick: float = 1.0) -> None:
        if min_interval <= 0 or tick < min_interval:
            raise ValueError(
                f"need 0 < min_interval <= tick, got min_interval={min_interval}, tick={tick}"
            )
        self.min_interval = min_interval
        self.tick = tick
        self._last: float | None = None
        self._dirty = True

    def mark(self) -> None:
        """Something changed: refresh at the next allowed moment."""
        self._dirty = True

    @property
    def dirty(self) -> bool:
        """A change is waiting for a refresh."""
        return self._dirty

    def wait_time(self, now: float) -> float:
        """Seconds until a refresh is due (0: due now)."""
        if self._last is None:
            return 0.0
        gap = self.min_interval if self._dirty else self.tick
        return max(0.0, self._last + gap - now)

    def done(self, now: float) -> None:
        """A refresh happened at ``now``."""
        self._last = now
        self._dirty = False


def _clock_text(ts: float | None, now: float, tz: tzinfo | None) -> str:
    """``"14:05:09"`` today, ``"Tue 08 Dec 09:30"`` on another day."""
    if ts is None:
        return ""
    when = datetime.fromtimestamp(ts, tz)
    if when.date() == datetime.fromtimestamp(now, tz).date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%a %d %b %H:%M")


def _schedule(job: Job) -> str:
    try:
        return job.schedule
    except Exception as exc:  # a broken trigger must not blank the panel
        return f"(cannot describe schedule: {exc})"


def _ahead(job: Job, until: float, limit: int = 8) -> tuple[float, ...]:
    out: list[float] = []
    ts = job.next_ts
    while ts is not None and ts <= until and len(out) < limit:
        out.append(ts)
        try:
            ts = job.trigger.next_fire_ts(ts)
        except Exception:  # a trigger that cannot go on just ends the lane
            break
    return tuple(out)


def snapshot(
    scheduler: Scheduler,
    now: float,
    book: RunBook,
    *,
    query: str = "",
    state: str = "all",
    selected: str | None = None,
    max_rows: int = 20,
    upcoming: int = 8,
    history: int = 15,
    lanes: int = 8,
) -> PanelState:
    """What the panel shows now.

    :param scheduler: read through its public methods only
    :param now: POSIX time of the snapshot (the scheduler's clock)
    :param book: run knowledge gathered from events
    :param query: show only jobs whose name contains this (case-insensitive)
    :param state: show only jobs in this state (``"all"``, or one of :data:`STATES`)
    :param selected: id of the run whose details to show
    :param max_rows: how many jobs the table shows at most
    :param upcoming: how many coming fire times to list
    :param history: how many recent runs to list
    :param lanes: how many jobs the timeline shows
    """
    info = scheduler.status()
    tz = scheduler.timezone
    jobs = scheduler.get_jobs()
    last = book.last_runs()
    in_flight = book.running()
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    needle = query.strip().lower()
    rows: list[JobRow] = []
    matching = 0
    for job in jobs:
        prev = last.get(job.name)
        run_id = in_flight.get(job.name)
        word = job_state(job, prev, run_id is not None)
        counts[word] += 1
        if (state != "all" and word != state) or (needle and needle not in job.name.lower()):
            continue
        matching += 1
        if len(rows) >= max_rows:
            continue
        nxt = None if (job.paused or job.unbound) else job.next_ts
        rows.append(
            JobRow(
                name=job.name,
                state=word,
                schedule=_schedule(job),
                kind=job.kind,
                next_ts=nxt,
                next_in=fmt_relative(nxt, now),
                next_at=_clock_text(nxt, now, tz),
                last_status=prev.status.value if prev else "",
                last_when=fmt_relative(prev.finished_ts, now) if prev else "",
                last_duration=fmt_duration(prev.duration) if prev else "",
                paused=job.paused,
                unbound=job.unbound,
                running_run_id=run_id,
            )
        )

    coming = tuple(
        UpcomingRow(
            job_name=job.name,
            ts=when.timestamp(),
            at=_clock_text(when.timestamp(), now, tz),
            countdown=fmt_relative(when.timestamp(), now),
            schedule=_schedule(job),
        )
        for when, job in scheduler.upcoming(limit=upcoming)
    )

    shown = [r.name for r in rows[:lanes]]
    recent, flying, progress, marks = book.view(shown)
    run_rows: list[tuple[float, RunRow]] = []
    for run_id, (job_name, started) in flying.items():
        run_rows.append((started, RunRow(
            id=run_id, job_name=job_name, status="running",
            started=_clock_text(started, now, tz),
            duration=fmt_duration(max(0.0, now - started)),
            progress=progress.get(run_id),
        )))
    for run in recent:
        start = run.started_ts if run.started_ts is not None else run.scheduled_ts
        run_rows.append((start, RunRow(
            id=run.id, job_name=run.job_name, status=run.status.value,
            started=_clock_text(start, now, tz), duration=fmt_duration(run.duration),
            progress=None,
        )))
    run_rows.sort(key=lambda item: item[0], reverse=True)

    detail = None
    if selected is not None:
        detail = _detail(selected, book, flying, progress, now, tz, _output_so_far(scheduler))

    window = _window(now, marks.values())
    by_name = {job.name: job for job in jobs}
    for job_name, started in flying.values():  # runs in flight end at "now"
        if job_name in marks:
            marks[job_name] = (*marks[job_name], (started, None, RunStatus.running))
    timeline = tuple(
        TimelineLane(job_name=name, marks=marks.get(name, ()), ahead=_ahead(by_name[name], window[1]))
        for name in shown
    )
    return PanelState(
        version=SCHEMA_VERSION,
        now=now,
        running=bool(info.get("running")),
        healthy=bool(info.get("healthy")),
        error=info.get("error"),
        counts=counts,
        total=len(jobs),
        matching=matching,
        jobs=tuple(rows),
        upcoming=coming,
        runs=tuple(r for _, r in run_rows[:history]),
        detail=detail,
        lanes=timeline,
        window=window,
    )


def _output_so_far(scheduler: Scheduler) -> Callable[[str], str | None]:
    """``scheduler.run_output``, or a stand-in for schedulers without it (the panel shows
    their runs' output once they end)."""
    run_output = getattr(scheduler, "run_output", None)
    return run_output if callable(run_output) else lambda run_id: None


def _detail(
    run_id: str,
    book: RunBook,
    flying: Mapping[str, tuple[str, float]],
    progress: Mapping[str, tuple[int, int]],
    now: float,
    tz: tzinfo | None,
    output_so_far: Callable[[str], str | None],
) -> RunDetail | None:
    if run_id in flying:
        job_name, started = flying[run_id]
        prog = progress.get(run_id)
        # Asked of the executor at each refresh while the run is selected (about once a
        # second): a live view of one run, not a cost per run.
        return RunDetail(
            id=run_id, job_name=job_name, status="running",
            started=_clock_text(started, now, tz),
            duration=fmt_duration(max(0.0, now - started)),
            output=book.live_output(run_id, output_so_far(run_id)), error="",
            output_path=None, progress=prog,
        )
    run = book.find(run_id)
    if run is None:
        return None
    start = run.started_ts if run.started_ts is not None else run.scheduled_ts
    return RunDetail(
        id=run.id, job_name=run.job_name, status=run.status.value,
        started=_clock_text(start, now, tz), duration=fmt_duration(run.duration),
        output=run.output, error=tidy_error(run.error) if run.error else "",
        output_path=run.output_path, progress=None,
    )


def _window(now: float, marks: Iterable[Sequence[Mark]]) -> tuple[float, float]:
    """The timeline's span: back to the oldest mark shown (30 s to a day), and half as far
    ahead, so recent history and the next fires share one axis."""
    oldest = min((m[0][0] for m in marks if m), default=now - 60.0)
    past = min(max(now - oldest, 30.0), 86400.0) * 1.05
    return now - past, now + past / 2


def as_dict(state: PanelState) -> dict[str, Any]:
    """The state as JSON-ready data (what a front end other than ipywidgets would receive)."""
    from dataclasses import asdict

    data = asdict(state)
    data["counts"] = dict(state.counts)
    for lane in data["lanes"]:
        lane["marks"] = [[a, b, str(s)] for a, b, s in lane["marks"]]
    return data
