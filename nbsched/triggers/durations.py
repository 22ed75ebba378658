"""Durations: the one grammar and the one short format of a length of time in nbsched.

Everything that takes a duration -- ``--every``, ``--timeout``, ``--misfire-grace`` and
``--retry-delay`` in the magics, ``timeout=``, ``misfire_grace_time=`` and ``retry_delay=``
in the API, the duration forms of :func:`~nbsched.triggers.parse_trigger` -- reads it with
:func:`parse_duration`, and everything that shows one writes it with
:func:`format_duration`, so that what nbsched shows reads back as the same duration.

Grammar (case-insensitive, spaces between parts optional): a number of seconds (``30``,
``2.5``), or one or more *number unit* parts: ``30s``, ``5m``, ``2h``, ``1d``, ``1w``,
``1h30m``, ``1h 30m``, ``1.5h``, ``250ms``, ``1 hour and 30 minutes``, ``2 mins``. ``m`` is
minutes (months have no fixed length).

The words are written by hand: a general "humanize" dependency would be a whole package for
two short functions with no DST or locale subtleties.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ..errors import InvalidArgumentError, TriggerParseError

__all__ = ["parse_duration", "format_duration", "match_duration", "duration_in_words", "UNITS"]

#: unit word -> seconds
UNITS: dict[str, float] = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}

_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)")
_SEPARATOR = re.compile(r"\s*(?:,|\band\b)\s*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_EXAMPLES = "'30s', '5m', '2h', '1d', '1h30m' or '1 hour and 30 minutes'"


def match_duration(text: str) -> float | None:
    """The seconds ``text`` means when it is written like a duration, else ``None`` (for
    parsers that try several forms, such as the schedule parser).

    :raises TriggerParseError: a duration with a minus sign
    """
    s = " ".join(text.split()).lower()
    if s.startswith("-") and match_duration(s[1:]) is not None:
        raise TriggerParseError(
            f"Duration {text.strip()!r} is negative; use a positive duration such as "
            "'10s' or '5m'"
        )
    if _NUMBER.fullmatch(s):
        return float(s)
    spaced = _SEPARATOR.sub(" ", s).strip()  # "1 hour, and 30 minutes" -> "1 hour 30 minutes"
    total = 0.0
    pos = 0
    while pos < len(spaced):
        match = _PART.match(spaced, pos)
        if match is None or match[2] not in UNITS:
            return None
        total += float(match[1]) * UNITS[match[2]]
        pos = match.end()
    return total if pos else None


def parse_duration(text: str | float | timedelta) -> float:
    """Seconds (0 or more) from a duration: text in the grammar above, a number of seconds
    or a ``timedelta``.

    :raises TriggerParseError: text that is not a duration, or a negative one
    :raises InvalidArgumentError: a negative, infinite or NaN number, or another type
    """
    if type(text) is float or type(text) is int:  # (first: every add_job has a few)
        plain = float(text)
        if 0 <= plain < math.inf:
            return plain
    if isinstance(text, str):
        if not text.strip():
            raise TriggerParseError(f"Empty duration; use seconds (30) or {_EXAMPLES}")
        seconds = match_duration(text)
        if seconds is None:
            raise TriggerParseError(
                f"Cannot read duration {text.strip()!r}; use seconds (30) or {_EXAMPLES}"
            )
        return seconds
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raise InvalidArgumentError(
            f"A duration must be seconds, a timedelta or text such as {_EXAMPLES}; "
            f"got {type(text).__name__} {text!r}"
        )
    if not math.isfinite(seconds):
        raise InvalidArgumentError(f"Duration {text!r} is not a finite number of seconds")
    if seconds < 0:
        raise InvalidArgumentError(
            f"Duration {text!r} is negative; use 0 or more seconds, e.g. 10 or '5m'"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The short form: ``"250ms"``, ``"3.4s"``, ``"10s"``, ``"1m5s"``, ``"1h30m"``, ``"2d"``.

    Below a minute three significant digits are kept; from a minute on, whole seconds. What
    it writes, :func:`parse_duration` reads back (to that precision).

    :raises InvalidArgumentError: not a finite number
    """
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
    ):
        raise InvalidArgumentError(f"format_duration needs a number of seconds, got {seconds!r}")
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


def _amount(value: float, unit: str) -> str:
    number = f"{value:g}" if value != int(value) else str(int(value))
    return f"{number} {unit}" + ("" if value == 1 else "s")


def duration_in_words(duration: timedelta) -> str:
    """For sentences (a trigger's ``describe()``): ``"10 seconds"``, ``"1 hour and 30
    minutes"``, ``"2 days, 3 hours and 1 minute"``."""
    micros = duration // timedelta(microseconds=1)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds = micros / 1_000_000
    parts = [
        _amount(value, unit)
        for value, unit in (
            (days, "day"),
            (hours, "hour"),
            (minutes, "minute"),
            (seconds, "second"),
        )
        if value
    ]
    if not parts:
        return "0 seconds"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
