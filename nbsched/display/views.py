"""What ``%schedule list | show | logs | status | run`` return: snapshots that display well.

Each object renders two ways: ``_repr_html_`` (a plain HTML table) and ``_repr_pretty_`` /
``__repr__`` (the same content as aligned plain text, for terminals, ``text/plain`` in saved
notebooks, and logs).

They are *snapshots*: the relative times ("in 4 s") are computed once, when the object is
made, so that a saved notebook says what was true when the cell ran. Every object also keeps
its data (``rows``, ``job``, ``runs``, ``info``) for programmatic use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from ..jobs import Job, Run, RunStatus
from .format import fmt_abs, fmt_duration, fmt_relative, tidy_error
from .tables import (
    LEFT,
    PRE,
    Displayable,
    escape,
    html_table,
    kv_html,
    kv_text,
    text_table,
)

__all__ = ["JobRow", "JobTable", "JobDetail", "RunLog", "StatusView", "HelpText"]

_STATUS_MARK = {
    RunStatus.succeeded: "✓",
    RunStatus.failed: "✗",
    RunStatus.timed_out: "⏱",
    RunStatus.missed: "–",
    RunStatus.skipped: "–",
    RunStatus.cancelled: "■",
    RunStatus.crashed: "✗",
    RunStatus.running: "…",
}


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _when(ts: float | None, now: float, tz: tzinfo | None) -> tuple[str, str]:
    return fmt_relative(ts, now), fmt_abs(ts, tz)


def _status_text(run: Run | None, now: float | None = None) -> str:
    """``"✓ succeeded"``; a run in flight also says since when (with ``now``): a run whose
    kernel died stays ``running`` in the store until a kernel of its notebook loads again."""
    if run is None:
        return ""
    text = f"{_STATUS_MARK.get(run.status, '')} {run.status.value}".strip()
    if run.status is RunStatus.running and now is not None and run.started_ts is not None:
        text += f" (since {fmt_relative(run.started_ts, now)})"
    return text


def _zone(job: Job, default: tzinfo | None) -> tzinfo | None:
    """The zone to show a job's times in: its schedule's, else ``default``."""
    try:
        return job.trigger.timezone or default
    except Exception:  # a broken trigger
        return default


def _schedule(job: Job) -> str:
    try:
        return job.schedule
    except Exception as exc:  # a broken trigger must not hide the whole table
        return f"(cannot describe schedule: {exc})"


def _state(job: Job) -> str:
    if job.unbound:
        return "unbound"
    if job.paused:
        return "paused"
    if job.next_run_time is None:
        return "finished"
    return "active"


def _run_text(run: Run) -> str:
    """What a run printed, then its error (traceback tidied)."""
    parts = [run.output.rstrip("\n")] if run.output else []
    if run.error:
        parts.append(tidy_error(run.error.rstrip("\n")))
    return "\n".join(parts)


# -- the job table ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRow:
    """One row of :class:`JobTable` (all text, ready to show)."""

    name: str
    schedule: str
    next_in: str
    next_at: str
    last_status: str
    last_duration: str
    state: str
    kind: str
    owner: str

    def as_dict(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True, slots=True, repr=False)
class JobTable(Displayable):
    """The jobs of this notebook (or of every notebook, ``show_owner=True``).

    :param jobs: the jobs, in display order
    :param last_runs: the newest run of each job, by name
    :param now: POSIX time the snapshot was taken
    :param tz: zone for absolute times (``None``: the machine's)
    :param show_owner: add a column with the notebook each job belongs to
    :param caption: a line shown above the table
    :param more: how many jobs were left out (``table_limit``)
    """

    jobs: Sequence[Job]
    last_runs: Mapping[str, Run | None]
    now: float
    tz: tzinfo | None = None
    show_owner: bool = False
    caption: str = ""
    more: int = 0
    rows: list[JobRow] = field(init=False)

    def __post_init__(self) -> None:
        rows = []
        for job in self.jobs:
            last = self.last_runs.get(job.name)
            nxt = None if (job.paused or job.unbound) else _ts(job.next_run_time)
            rel, at = _when(nxt, self.now, _zone(job, self.tz))
            rows.append(
                JobRow(
                    name=job.name,
                    schedule=_schedule(job),
                    next_in=rel,
                    next_at=at,
                    last_status=_status_text(last, self.now),
                    last_duration=fmt_duration(last.duration) if last else "",
                    state=_state(job),
                    kind=job.kind,
                    owner=job.owner or "",
                )
            )
        object.__setattr__(self, "rows", rows)

    def _headers(self) -> list[str]:
        h = ["name", "schedule", "next run", "", "last run", "took", "state"]
        return h + ["notebook"] if self.show_owner else h

    def _footer(self) -> str:
        if not self.more:
            return ""
        return (
            f"… {self.more} more not shown: narrow the list (%schedule list PATTERN, --state "
            "STATE) or raise the limit (%config ScheduleMagics.table_limit = 200)"
        )

    def _text(self) -> str:
        if not self.rows:
            return (self.caption + "\n" if self.caption else "") + "No scheduled jobs."
        cells = [
            [r.name, r.schedule, r.next_in, r.next_at, r.last_status, r.last_duration, r.state]
            + ([r.owner] if self.show_owner else [])
            for r in self.rows
        ]
        parts = [self.caption] if self.caption else []
        parts.append(text_table(self._headers(), cells))
        if self.more:
            parts.append(self._footer())
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        if not self.rows:
            cap = f"<p>{escape(self.caption)}</p>" if self.caption else ""
            return f"{cap}<p><i>No scheduled jobs.</i></p>"
        cells = []
        for r in self.rows:
            state = (
                f"<b>{escape(r.state)}</b>" if r.state in ("unbound", "paused") else escape(r.state)
            )
            last = self.last_runs.get(r.name)
            status = escape(r.last_status)
            if last is not None and last.output_path:  # a notebook run: its executed copy
                status += f" {_notebook_link(last.output_path, label='notebook')}"
            row = [
                f"<code>{escape(r.name)}</code>",
                escape(r.schedule),
                escape(r.next_in),
                f"<small>{escape(r.next_at)}</small>",
                status,
                escape(r.last_duration),
                state,
            ]
            if self.show_owner:
                row.append(f"<small>{escape(r.owner)}</small>")
            cells.append(row)
        footer = f"<p><small>{escape(self._footer())}</small></p>" if self.more else ""
        return html_table(self._headers(), cells, escape(self.caption)) + footer

    def __len__(self) -> int:
        return len(self.rows)


# -- one job ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class JobDetail(Displayable):
    """Everything about one job, and its latest runs.

    :param job: the job
    :param runs: its newest runs, newest first
    :param now: POSIX time the snapshot was taken
    :param tz: zone for absolute times
    """

    job: Job
    runs: Sequence[Run]
    now: float
    tz: tzinfo | None = None

    def _pairs(self) -> list[tuple[str, str]]:
        job = self.job
        nxt = None if (job.paused or job.unbound) else _ts(job.next_run_time)
        rel, at = _when(nxt, self.now, _zone(job, self.tz))
        options = []
        if job.timeout is not None:
            options.append(f"timeout {fmt_duration(job.timeout)}")
        if job.max_instances != 1:
            options.append(f"max instances {job.max_instances}")
        if not job.coalesce:
            options.append("no coalesce")
        if job.misfire_grace_time is not None:
            options.append(f"misfire grace {fmt_duration(job.misfire_grace_time)}")
        if job.retries:
            options.append(f"retries {job.retries} (delay {fmt_duration(job.retry_delay)})")
        pairs = [
            ("name", job.name),
            ("state", _state(job)),
            ("schedule", _schedule(job)),
            ("next run", f"{rel}  ({at})" if nxt is not None else "—"),
            ("kind", job.kind),
            ("target", job.target if job.kind != "cell" else job.target.strip("\n")),
            ("executor", job.executor),
        ]
        if job.args:
            pairs.append(("args", repr(tuple(job.args))))
        if job.kwargs:
            pairs.append(("kwargs", repr(dict(job.kwargs))))
        if job.parameters:
            pairs.append(("parameters", repr(dict(job.parameters))))
        if options:
            pairs.append(("options", ", ".join(options)))
        pairs.append(("notebook", job.owner or ""))
        if job.created_at is not None:
            pairs.append(("created", fmt_abs(job.created_at.timestamp(), self.tz)))
        if job.unbound:
            ref = job.target.partition(":")[2] or job.target
            pairs.append(("note", f"waiting for {ref!r} to be defined (run its cell again)"))
        return pairs

    def _text(self) -> str:
        text = kv_text(self._pairs())
        if self.runs:
            text += "\n\n" + RunLog(self.runs, self.now, self.tz, show_output=False)._text()
        return text

    def _repr_html_(self) -> str:
        pairs = []
        for k, v in self._pairs():
            if k == "target" and self.job.kind == "cell":
                pairs.append((k, f"<pre{PRE}>{escape(v)}</pre>"))
            elif k == "name":
                pairs.append((k, f"<code>{escape(v)}</code>"))
            else:
                pairs.append((k, escape(v)))
        out = kv_html(pairs)
        if self.runs:
            out += RunLog(self.runs, self.now, self.tz, show_output=False)._repr_html_()
        return out


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class RunLog(Displayable):
    """Runs, newest first, with what each printed (``%schedule logs`` / ``run``).

    :param runs: the runs, newest first
    :param now: POSIX time the snapshot was taken
    :param tz: zone for absolute times
    :param show_output: include each run's output and error
    :param caption: a line shown above the runs
    :param show_ids: add each run's id (what ``nbsched logs NAME --run ID`` takes)
    """

    runs: Sequence[Run]
    now: float
    tz: tzinfo | None = None
    show_output: bool = True
    caption: str = ""
    show_ids: bool = False

    @property
    def output(self) -> str:
        """The output of the newest run (handy in tests and scripts)."""
        return self.runs[0].output if self.runs else ""

    def _row(self, run: Run) -> list[str]:
        when = run.started_ts if run.started_ts is not None else run.scheduled_ts
        return [
            run.job_name,
            _status_text(run),
            fmt_relative(when, self.now),
            fmt_abs(when, self.tz),
            fmt_duration(run.duration),
            str(run.attempt) if run.attempt else "",
        ] + ([run.id] if self.show_ids else [])

    _HEAD = ("job", "status", "started", "", "took", "retry")

    def _head(self) -> tuple[str, ...]:
        return (*self._HEAD, "id") if self.show_ids else self._HEAD

    def _text(self) -> str:
        if not self.runs:
            return (self.caption + "\n" if self.caption else "") + "No runs yet."
        parts = [self.caption] if self.caption else []
        if not self.show_output:
            parts.append(text_table(self._head(), [self._row(r) for r in self.runs]))
            parts += [
                f"executed notebook of the run {self._row(r)[2]}: {r.output_path}"
                for r in self.runs
                if r.output_path
            ]
            return "\n".join(parts)
        for run in self.runs:
            name, status, rel, at, took, retry = self._row(run)[:6]
            head = f"[{name}] {status}, started {rel} ({at})" if at else f"[{name}] {status}"
            head += f", took {took}" if took else ""
            head += f", retry {retry}" if retry else ""
            head += f", run {run.id}" if self.show_ids else ""
            parts.append(head)
            if run.output_path:
                parts.append(f"  executed notebook: {run.output_path}")
            body = _run_text(run)
            if body:
                parts.append("\n".join("  " + ln for ln in body.splitlines()))
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        if not self.runs:
            cap = f"<p>{escape(self.caption)}</p>" if self.caption else ""
            return f"{cap}<p><i>No runs yet.</i></p>"
        head = "".join(f"<th{LEFT}>{escape(h)}</th>" for h in self._head())
        body = []
        for run in self.runs:
            cells = [escape(c) for c in self._row(run)]
            cells[0] = f"<code>{cells[0]}</code>"
            body.append("<tr>" + "".join(f"<td{LEFT}>{c}</td>" for c in cells) + "</tr>")
            if run.output_path:
                body.append(
                    f'<tr><td{LEFT}></td><td colspan="{len(self._head()) - 1}"{LEFT}>'
                    f"executed notebook: {_notebook_link(run.output_path)}</td></tr>"
                )
            text = _run_text(run) if self.show_output else ""
            if text:
                body.append(
                    f'<tr><td{LEFT}></td><td colspan="{len(self._head()) - 1}"{LEFT}>'
                    f"<pre{PRE}>{escape(text)}</pre></td></tr>"
                )
        cap = f"<caption{LEFT}>{escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- status -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class StatusView(Displayable):
    """``Scheduler.status()`` plus what the kernel layer knows (owner, output routing).

    :param info: the status mapping
    :param now: POSIX time the snapshot was taken
    :param tz: zone for absolute times
    """

    info: Mapping[str, Any]
    now: float
    tz: tzinfo | None = None

    def _pairs(self) -> list[tuple[str, str]]:
        info = dict(self.info)
        running = bool(info.pop("running", False))
        healthy = bool(info.pop("healthy", False))
        error = info.pop("error", None)
        state = "running" if running else "stopped"
        state += ", healthy" if healthy else ", NOT healthy"
        pairs = [("scheduler", state)]
        if error:
            pairs.append(("error", str(error)))
        nrt = info.pop("next_run_time", None)
        if nrt is not None:
            ts = nrt.timestamp() if isinstance(nrt, datetime) else float(nrt)
            pairs.append(("next run", f"{fmt_relative(ts, self.now)}  ({fmt_abs(ts, self.tz)})"))
        for key, value in info.items():
            pairs.append((key.replace("_", " "), "" if value is None else str(value)))
        return pairs

    def _text(self) -> str:
        return kv_text(self._pairs())

    def _repr_html_(self) -> str:
        pairs = []
        for k, v in self._pairs():
            if k == "scheduler" and "NOT" in v or k == "error":
                pairs.append((k, f"<b>{escape(v)}</b>"))
            else:
                pairs.append((k, escape(v)))
        return kv_html(pairs)


@dataclass(frozen=True, slots=True, repr=False)
class HelpText(Displayable):
    """Help for ``%schedule`` (``--help``), shown as monospaced text."""

    text: str

    def _text(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre{PRE}>{escape(self.text)}</pre>"


def _notebook_link(path: str, label: str | None = None) -> str:
    """An executed notebook as HTML: a link relative to this process's folder when it lies
    below it (JupyterLab opens such a link from a notebook's output, resolved against the
    notebook's folder, which is where its kernel runs), else the path to copy."""
    try:
        rel = Path(path).resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        if label is None:
            return f"<code>{escape(path)}</code>"
        return f'<small title="{escape(path)}">({escape(label)})</small>'
    shown = f"<code>{escape(path)}</code>" if label is None else escape(label)
    return f'<a href="{escape(rel.as_posix())}" target="_blank">{shown}</a>'
