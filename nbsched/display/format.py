"""Times, durations and tracebacks as short text, for every table and view of nbsched.

:func:`format_duration` (from :mod:`nbsched.triggers.durations`, the core's one duration
formatter, beside the one duration grammar) writes every duration nbsched shows: run times
("took 3.4s"), job options ("timeout 2m") and relative times ("in 4s", "3m ago").
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

from ..triggers.durations import format_duration

__all__ = ["format_duration", "fmt_duration", "fmt_relative", "fmt_abs", "tidy_error"]


def fmt_duration(seconds: float | None) -> str:
    """:func:`format_duration`, and ``""`` for ``None`` (a run that has not finished)."""
    return "" if seconds is None else format_duration(seconds)


def fmt_relative(ts: float | None, now: float) -> str:
    """``"in 4s"``, ``"3m ago"``, ``"now"``; ``""`` for ``None``."""
    if ts is None:
        return ""
    delta = ts - now
    if abs(delta) < 0.5:
        return "now"
    # coarser the further away ("in 2h5m", not "in 2h5m12s")
    s = round(abs(delta))
    span = format_duration(s - s % 3600 if s >= 86400 else s - s % 60 if s >= 600 else s)
    return f"in {span}" if delta > 0 else f"{span} ago"


def fmt_abs(ts: float | None, tz: tzinfo | None) -> str:
    """``"2026-05-09 10:30:05 CEST"`` in ``tz`` (the machine's zone when ``None``)."""
    if ts is None:
        return ""
    dt = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts)
    if tz is None:
        dt = dt.astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


#: the nbsched package: frames from here are the executor and the cell-job trampoline
_PKG_DIR = str(Path(__file__).resolve().parents[1])


def tidy_error(error: str) -> str:
    """A run's traceback without nbsched's own frames (the executor and the cell-job
    trampoline), which only hide the user's lines."""
    out: list[str] = []
    skipping = False
    for ln in error.splitlines():
        if ln.startswith('  File "'):
            path = ln[len('  File "') :].split('"', 1)[0]
            skipping = path.startswith(_PKG_DIR)
            if skipping:
                continue
        elif skipping and ln.startswith("    "):
            continue
        else:
            skipping = False
        out.append(ln)
    return "\n".join(out)
