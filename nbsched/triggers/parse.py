"""``parse_trigger``: schedule strings -> triggers (no I/O; the clock only for ``now``).

Accepted forms (case-insensitive, extra spaces ignored):

* **durations** -> :class:`IntervalTrigger` (starting when parsed): ``30s``, ``5m``, ``2h``, ``1d``,
  ``1w``, ``1h30m``, ``1h 30m``, ``1.5h``, ``every 10s``, ``every 5 minutes``,
  ``every 1 hour and 30 minutes``, ``every second/minute/hour``;
* **cron** -> :class:`CronTrigger`: 5 or 6 fields, ``@daily`` etc., optionally prefixed
  ``cron``;
* **phrases** -> :class:`CronTrigger`, so they share cron's DST rules: ``daily at 09:00``,
  ``every day at 9:00``, ``every weekday at 9:30``, ``weekdays at 9:30``, ``every weekend at
  10:00``, ``every monday at 8:00``, ``every mon, wed and fri at 18:00``, ``mondays at
  8am``, ``at 7:15pm every friday``, ``hourly`` (at minute 0), ``hourly at :15``, ``daily``
  / ``every day`` / ``every monday`` (midnight), ``weekly``, ``monthly``, ``yearly``;
* **dates** -> :class:`DateTrigger`: ``at 2026-12-01 09:00``, ``on 2026-12-01 at 9am``,
  ``2026-12-01T09:00``, ``2026-12-01T09:00+01:00``; ``in 10 minutes`` / ``in 2h`` (a delay
  counted from when it is parsed).

A relative schedule is anchored once, when it is parsed: ``"every 7s"`` fires at ``t0 +
7k`` and ``"in 10 minutes"`` once at ``t0 + 10 min``, where t0 is the time of parsing (or
the job's start: the scheduler anchors such a trigger again when the job is added, see
:meth:`~nbsched.abc.Trigger.anchor`). Durations follow the grammar of
:mod:`nbsched.triggers.durations`, except that a schedule needs a unit (``every 30`` could
mean seconds or minutes).

"every hour" is an interval (every 3600 s from when the job is added), "hourly" is cron (at
minute 0 of every hour). A duration counts days as 24 h of elapsed time, so ``every 1d``
drifts by an hour against the wall clock at DST changes; ``daily at ...`` does not.
"""

from __future__ import annotations

import difflib
import functools
import re
from datetime import datetime, time, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ..abc import Trigger
from ..errors import TriggerParseError
from ._base import require_aware
from ._cronexpr import ALIASES
from .cron import CronTrigger
from .date import DateTrigger
from .durations import match_duration
from .interval import IntervalTrigger
from .zones import resolve_zone

__all__ = ["parse_trigger"]

_FORMS = (
    "use a duration ('10s', '5m', '1h30m', 'every 5 minutes'), a cron expression "
    "('*/5 * * * *'), a phrase ('every weekday at 9:30') or a date ('at 2026-12-01 09:00')"
)
_KEYWORDS = (
    "every", "each", "daily", "hourly", "weekly", "monthly", "yearly", "annually", "in",
    "at", "on", "cron", "weekdays", "weekends",
)  # fmt: skip

_CRON_NAMES = frozenset(
    "jan feb mar apr may jun jul aug sep oct nov dec sun mon tue wed thu fri sat l w lw".split()
)
_CRON_TOKEN = re.compile(r"[0-9a-z*/,\-?#]+")

# weekday names -> cron numbers (Sunday as 7, so that lists read Monday..Sunday)
_DAY_NUMBERS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        ("mon", "monday", "mondays", "mons"),
        ("tue", "tues", "tuesday", "tuesdays"),
        ("wed", "weds", "wednesday", "wednesdays"),
        ("thu", "thur", "thurs", "thursday", "thursdays"),
        ("fri", "friday", "fridays", "fris"),
        ("sat", "saturday", "saturdays", "sats"),
        ("sun", "sunday", "sundays", "suns"),
    ),
    start=1,
):
    _DAY_NUMBERS.update(dict.fromkeys(_names, _number))
_DAY_GROUPS = {
    "day": "*", "days": "*", "daily": "*",
    "weekday": "1-5", "weekdays": "1-5",
    "weekend": "6,7", "weekends": "6,7",
}  # fmt: skip
_PLURAL_OK = frozenset({"daily", "weekdays", "weekends"})

_TIME = re.compile(
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?(?::(?P<second>\d{2}))?"
    r"\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?"
)
_DATE = re.compile(
    r"(?:(?:at|on)\s+)?(?P<date>\d{4}-\d{2}-\d{2})(?:(?:t|\s+(?:at\s+)?)(?P<rest>\S.*))?"
)
_WHEN_FIRST = re.compile(r"at\s+(?P<time>.+?)\s+(?P<days>(?:every|each|on)\s+.+)")
_DAYS_THEN_TIME = re.compile(r"(?P<days>.+?)(?:\s+at\s+(?P<time>.+))?")
_HOURLY_AT = re.compile(r"(?:hourly|every hour)\s+at\s+:(?P<minute>\d{1,2})")
_NICKNAMES = {
    "hourly": "@hourly",
    "daily": "@daily",
    "midnight": "@daily",
    "weekly": "@weekly",
    "every week": "@weekly",
    "monthly": "@monthly",
    "every month": "@monthly",
    "yearly": "@yearly",
    "annually": "@yearly",
    "every year": "@yearly",
}
_UNIT_WORDS = {"every second": 1, "every minute": 60, "every hour": 3600}
_BARE_NUMBER = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)")


class _Relative(NamedTuple):
    """A schedule measured from when it is parsed: ``"interval"`` or ``"delay"`` seconds."""

    kind: str
    seconds: float

    def build(self, now: datetime | None, tz: ZoneInfo) -> Trigger:
        """The trigger, anchored (provisionally, as if made then) at ``now`` or the clock."""
        if self.kind == "interval":
            interval = IntervalTrigger(self.seconds)
            if now is None:
                return interval
            start = require_aware(now, "now")
            return IntervalTrigger._make(interval.interval.total_seconds(), start, None, True)
        date = DateTrigger(delay=self.seconds, timezone=tz)
        if now is None:
            return date
        return DateTrigger._provisional(require_aware(now, "now") + self.seconds, self.seconds, tz)


def parse_trigger(
    text: str, timezone: str | tzinfo | None = None, *, now: datetime | None = None
) -> Trigger:
    """Turn a schedule string into a trigger (see the module docstring for the forms).

    :param text: e.g. ``"every 10s"``, ``"*/5 * * * *"``, ``"every weekday at 9:30"``,
        ``"at 2026-12-01 09:00"``, ``"in 10 minutes"``
    :param timezone: IANA zone for cron, phrases and dates without an offset; ``None`` means
        the machine's local zone
    :param now: the time of parsing, which relative schedules (``"every 10s"``, ``"in 10
        minutes"``) are anchored at (an aware datetime); ``None``: the system clock
    :raises TriggerParseError: text that is none of the accepted forms, with what would work;
        a zero or negative duration; a time such as ``25:00``; an unknown zone
    """
    if not isinstance(text, str):
        raise TriggerParseError(f"A schedule must be a string, got {type(text).__name__}")
    zone = resolve_zone(timezone)
    parsed = _parse(text, zone)
    return parsed.build(now, zone) if isinstance(parsed, _Relative) else parsed


# Triggers are immutable values, so the same text in the same zone can share one: adding
# 10k jobs "every 1h" parses once. (Relative schedules are cached as what they measure, and
# anchored on every call.)
@functools.lru_cache(maxsize=512)
def _parse(text: str, tz: ZoneInfo) -> Trigger | _Relative:
    written = " ".join(text.split())
    s = written.lower()
    if not s:
        raise TriggerParseError(f"Empty schedule; {_FORMS}")

    # cron expressions, explicit or recognisable by their shape
    if s.startswith("cron "):
        return CronTrigger(written[5:], timezone=tz)
    if s.startswith("@") or _looks_like_cron(s):
        return CronTrigger(s, timezone=tz)

    # durations -> intervals
    if s in _UNIT_WORDS:
        return _Relative("interval", _UNIT_WORDS[s])
    duration = _duration(s[6:] if s.startswith("every ") else s)
    if duration is not None:
        return _Relative("interval", duration)

    # one-shots
    if s.startswith("in "):
        delay = _duration(s[3:])
        if delay is not None:
            return _Relative("delay", delay)
    date_match = _DATE.fullmatch(s)
    if date_match is not None:
        return DateTrigger(_date(written, date_match), timezone=tz)

    # phrases -> cron
    expr = _phrase_to_cron(s, written)
    if expr is not None:
        return CronTrigger(expr, timezone=tz)

    if s.startswith("at ") and (_TIME.fullmatch(s[3:]) or s[3:] in ("noon", "midnight")):
        raise TriggerParseError(
            f"Schedule {written!r} has a time but no day; use 'daily {s}' for every day or "
            f"'at 2026-12-01 {s[3:]}' for once"
        )
    raise TriggerParseError(f"Cannot understand schedule {written!r}{_hint(s)}; {_FORMS}")


def _duration(text: str) -> float | None:
    """Seconds of a duration with a unit, ``None`` for text that is not a duration.

    :raises TriggerParseError: a duration that is zero, negative or has no unit
    """
    if _BARE_NUMBER.fullmatch(text):
        raise TriggerParseError(
            f"Duration {text!r} has no unit; write e.g. '{text}s', '{text}m' or '{text}h'"
        )
    seconds = match_duration(text)
    if seconds is not None and timedelta(seconds=seconds) <= timedelta(0):
        raise TriggerParseError(
            f"Duration {text!r} is zero; use a positive duration such as '10s' or '5m'"
        )
    return seconds


def _hint(s: str) -> str:
    """``" (did you mean 'every monday at 8:00'?)"`` for near misses, else ``""``."""
    try:
        if _phrase_to_cron(f"every {s}", s) is not None:  # "monday at 8:00"
            return f" (did you mean {'every ' + s!r}?)"
    except TriggerParseError:
        pass
    first = s.split()[0]
    if first in _KEYWORDS:
        return ""
    close = difflib.get_close_matches(first, _KEYWORDS, n=1, cutoff=0.75)  # "evry"
    return f" (did you mean {close[0]!r}?)" if close else ""


def _looks_like_cron(s: str) -> bool:
    """5 or 6 cron-shaped tokens, or fewer/more with a ``*`` (so that ``* * *`` gets the
    "expected 5 fields" message rather than the generic one)."""
    tokens = s.split()
    for token in tokens:
        if not _CRON_TOKEN.fullmatch(token):
            return False
        if any(word not in _CRON_NAMES for word in re.findall(r"[a-z]+", token)):
            return False
    return len(tokens) in (5, 6) or ("*" in s and len(tokens) > 1)


def _date(written: str, match: re.Match[str]) -> datetime:
    """The datetime of ``at 2026-12-01 09:00`` (ISO, or a date followed by ``9am``)."""
    date_text, rest = match["date"], match["rest"]
    iso = date_text if rest is None else f"{date_text}T{rest.upper().replace(' ', '')}"
    try:
        return datetime.fromisoformat(iso)
    except ValueError as exc:
        if rest is not None and _TIME.fullmatch(rest):
            day = _parse_iso_date(date_text, written)
            return datetime.combine(day, _time_of_day(rest, written))
        raise TriggerParseError(
            f"Bad date {written!r} ({exc}); use e.g. 'at 2026-12-01 09:00' or "
            "'2026-12-01T09:00+01:00'"
        ) from None


def _parse_iso_date(text: str, written: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise TriggerParseError(
            f"Bad date {written!r} ({exc}); use e.g. 'at 2026-12-01 09:00'"
        ) from None


def _time_of_day(text: str, written: str) -> time:
    """``9``, ``09:30``, ``9:30:15``, ``9am``, ``7:15 pm``, ``noon``, ``midnight``."""
    text = text.strip()
    if text == "noon":
        return time(12)
    if text == "midnight":
        return time(0)
    match = _TIME.fullmatch(text)
    if match is None:
        raise TriggerParseError(
            f"Bad time {text!r} in {written!r}; use 24-hour 'HH:MM' such as '09:30' or "
            "'17:00', or '9am' / '5:30pm'"
        )
    hour = int(match["hour"])
    minute = int(match["minute"] or 0)
    second = int(match["second"] or 0)
    ampm = match["ampm"]
    if ampm is not None:
        if not 1 <= hour <= 12:
            raise TriggerParseError(
                f"Bad time {text!r} in {written!r}: with am/pm the hour must be 1-12"
            )
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise TriggerParseError(
            f"Bad time {text!r} in {written!r}: hours must be 0-23, minutes and seconds "
            "0-59, e.g. '09:30' or '23:59:30'"
        )
    return time(hour, minute, second)


def _weekdays(days: str) -> str | None:
    """``every`` day-spec -> cron weekday field, or ``None`` if it is not one."""
    if days in _DAY_GROUPS:
        return _DAY_GROUPS[days]
    numbers: set[int] = set()
    for word in re.split(r"\s*(?:,|\band\b|\s)\s*", days):
        if not word:
            continue
        if word not in _DAY_NUMBERS:
            return None
        numbers.add(_DAY_NUMBERS[word])
    if not numbers:
        return None
    return ",".join(str(n) for n in sorted(numbers))


def _phrase_to_cron(s: str, written: str) -> str | None:
    """A cron expression for ``daily at 9:00``-style phrases, or ``None``."""
    if s in _NICKNAMES:
        return ALIASES[_NICKNAMES[s]]
    hourly = _HOURLY_AT.fullmatch(s)
    if hourly is not None:
        minute = int(hourly["minute"])
        if minute > 59:
            raise TriggerParseError(f"Bad minute in {written!r}: it must be 0-59, e.g. ':15'")
        return f"{minute} * * * *"
    when_first = _WHEN_FIRST.fullmatch(s)
    if when_first is not None:  # "at 9:30 every weekday"
        days_text, time_text = when_first["days"], when_first["time"]
    else:
        match = _DAYS_THEN_TIME.fullmatch(s)
        if match is None:  # pragma: no cover  (the pattern matches any non-empty text)
            return None
        days_text, time_text = match["days"], match["time"]
    prefixed = re.match(r"(?:every|each|on)\s+", days_text)
    days = days_text[prefixed.end() :] if prefixed else days_text
    weekday = _weekdays(days)
    if weekday is None:
        return None
    # "monday at 8:00" alone reads like a one-off; ask for "every monday" or "mondays"
    words = [w for w in re.split(r"\W+", days) if w and w != "and"]
    if prefixed is None and not all(w in _PLURAL_OK or w.endswith("s") for w in words):
        return None
    at = time(0) if time_text is None else _time_of_day(time_text, written)
    clock = f"{at.minute} {at.hour}"
    if at.second:
        clock = f"{at.second} {clock}"
    return f"{clock} * * {weekday}"
