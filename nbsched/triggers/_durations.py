"""Durations as text: ``"1h30m"`` -> ``timedelta`` and back (private).

The words are written by hand: cron-descriptor only describes cron expressions, and an
interval such as 90 minutes or 2.5 s has no cron form; a general "humanize" dependency would
be a whole package for one short function with no DST or locale subtleties.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ..errors import TriggerParseError

__all__ = ["parse_duration", "format_duration", "UNITS"]

#: unit word -> seconds ("m" is minutes; months have no fixed length)
UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}

_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)")
_SEPARATOR = re.compile(r"\s*(?:,|\band\b)\s*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_duration(text: str) -> timedelta | None:
    """Read ``"30s"``, ``"1h30m"``, ``"1h 30m"``, ``"1 hour and 30 minutes"``, ``"1.5h"``.

    :param text: lower-case text with single spaces
    :returns: the duration, or ``None`` when ``text`` is not written like a duration
    :raises TriggerParseError: a duration that is zero, negative or has no unit
    """
    if text.startswith("-") and parse_duration(text[1:].strip()) is not None:
        raise TriggerParseError(
            f"Duration {text!r} is negative; use a positive duration such as '10s' or '5m'"
        )
    if _NUMBER.fullmatch(text):
        raise TriggerParseError(
            f"Duration {text!r} has no unit; write e.g. '{text}s', '{text}m' or '{text}h'"
        )
    spaced = _SEPARATOR.sub(" ", text).strip()  # "1 hour, and 30 minutes" -> "1 hour 30 minutes"
    total = 0.0
    pos = 0
    while pos < len(spaced):
        match = _PART.match(spaced, pos)
        if match is None or match[2] not in UNITS:
            return None
        total += float(match[1]) * UNITS[match[2]]
        pos = match.end()
    if pos == 0:
        return None
    duration = timedelta(seconds=total)
    if duration <= timedelta(0):
        raise TriggerParseError(
            f"Duration {text!r} is zero; use a positive duration such as '10s' or '5m'"
        )
    return duration


def _amount(value: float, unit: str) -> str:
    number = f"{value:g}" if value != int(value) else str(int(value))
    return f"{number} {unit}" + ("" if value == 1 else "s")


def format_duration(duration: timedelta) -> str:
    """``"10 seconds"``, ``"1 hour and 30 minutes"``, ``"2 days, 3 hours and 1 minute"``."""
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
