"""Times, durations and tracebacks as short text, for every table and view of nbsched.

:func:`format_duration` is the one duration formatter of the display layer: run times
("took 3.4s"), job options ("timeout 2m") and relative times ("in 4s", "3m ago") all go
through it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

__all__ = ["format_duration", "fmt_duration", "fmt_relative", "fmt_abs", "tidy_error"]


def format_duration(seconds: float) -> str:
    """The short form of a duration: ``"250ms"``, ``"3.4s"``, ``"10s"``, ``"1m5s"``,
    ``"1h30m"``, ``"2d"`` -- the way ``--every`` and ``--timeout`` are written, so what a
    table shows can be typed back. Below a minute three significant digits are kept; from a
    minute on, whole seconds.

    :param seconds: a finite number of seconds
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    seconds = round(seconds, 6)  # datetimes and timedeltas stop at microseconds
    if seconds == 0:
        return "0s"
    if seconds < 0.9995:
        return f"{seconds * 1000:.3g}ms"
    if seconds < 59.95:
        return f"{seconds:.3g}s"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


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
