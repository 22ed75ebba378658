"""Times, durations and tracebacks as short text, for every table and view of nbsched.

:func:`format_duration` is the one duration formatter of the display layer: run times
("took 3.40 s"), job options ("timeout 2 min") and relative times ("in 4 s", "3 min ago")
all go through it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

__all__ = ["format_duration", "fmt_duration", "fmt_relative", "fmt_abs", "tidy_error"]


def format_duration(seconds: float) -> str:
    """``"120 ms"``, ``"3.40 s"``, ``"12.5 s"``, ``"4 s"``, ``"2 min 5 s"``, ``"1 h 30 min"``,
    ``"2 d 3 h"``: a fraction of a second is shown below a minute, whole units above.

    :param seconds: a duration of 0 seconds or more
    """
    if seconds != int(seconds) and seconds < 60:
        if seconds < 1:
            return f"{seconds * 1000:.0f} ms"
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min" + (f" {s} s" if s and m < 10 else "")
    if s < 86400:
        h, rem = divmod(s, 3600)
        m = rem // 60
        return f"{h} h" + (f" {m} min" if m else "")
    d, rem = divmod(s, 86400)
    h = rem // 3600
    return f"{d} d" + (f" {h} h" if h else "")


def fmt_duration(seconds: float | None) -> str:
    """:func:`format_duration`, and ``""`` for ``None`` (a run that has not finished)."""
    return "" if seconds is None else format_duration(seconds)


def fmt_relative(ts: float | None, now: float) -> str:
    """``"in 4 s"``, ``"3 min ago"``, ``"now"``; ``""`` for ``None``."""
    if ts is None:
        return ""
    delta = ts - now
    if abs(delta) < 0.5:
        return "now"
    span = format_duration(round(abs(delta)))
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
