"""Time zones for triggers: IANA names in, ``ZoneInfo`` out, plus the two DST questions the
cron and date triggers ask (where does a nonexistent wall time land, when does the offset
change next).

zoneinfo answers "what is the offset at instant X" but has no public API for "when is the
next transition", so :func:`next_offset_change` probes and bisects. Transitions are rare
(about two a year), so the slow path runs rarely; the common case costs one offset lookup.
"""

from __future__ import annotations

import math
import warnings
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from ..errors import TriggerParseError, did_you_mean

__all__ = [
    "resolve_zone",
    "zone_name",
    "local_zone_name",
    "wall_to_ts",
    "next_offset_change",
    "local_datetime",
]


# Spellings of UTC that tzdata keeps as links; stored and shown as plain "UTC".
_UTC_ALIASES = frozenset(
    {"utc", "etc/utc", "etc/uct", "uct", "etc/universal", "universal", "etc/zulu", "zulu"}
)

#: the probe step of :func:`next_offset_change`. No zone in tzdata 2026 has two offset
#: changes less than 3 days apart (closest: Africa/Freetown in 1939, 4 days), so a daily
#: probe cannot step over a change and its reversal.
_PROBE = 86_400


def local_zone_name() -> str:
    """The machine's IANA zone name (via tzlocal), or ``"UTC"`` when none is configured."""
    try:
        with warnings.catch_warnings():
            # tzlocal warns about inconsistent TZ settings; a default zone is not worth a
            # warning in the user's cell (and pytest turns warnings into errors)
            warnings.simplefilter("ignore")
            import tzlocal

            name = tzlocal.get_localzone_name()
    except Exception:  # containers without /etc/localtime, broken TZ variables, ...
        name = None
    return _canonical(name) if name else "UTC"


def _canonical(name: str) -> str:
    return "UTC" if name.lower() in _UTC_ALIASES else name


@lru_cache(maxsize=256)
def _zone_by_name(name: str) -> zoneinfo.ZoneInfo:
    stripped = name.strip()
    if stripped:
        try:
            return zoneinfo.ZoneInfo(_canonical(stripped))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
        # "europe/paris" -> "Europe/Paris" (the error path only: listing zones is slow)
        known = zoneinfo.available_timezones()
        by_lower = {k.lower(): k for k in known}
        if stripped.lower() in by_lower:
            return zoneinfo.ZoneInfo(_canonical(by_lower[stripped.lower()]))
    else:
        known = set()
    hint = did_you_mean(stripped, known) or " (use an IANA name such as 'Europe/Paris' or 'UTC')"
    raise TriggerParseError(f"Unknown time zone {name!r}{hint}")


def resolve_zone(tz: str | tzinfo | None) -> zoneinfo.ZoneInfo:
    """Turn a trigger's ``timezone`` argument into a ``ZoneInfo``.

    :param tz: an IANA name (``"Europe/Paris"``), a ``ZoneInfo``, ``datetime.timezone.utc``,
        a tzinfo carrying an IANA name (pytz/dateutil style ``zone``/``key`` attribute), or
        ``None`` for the machine's local zone
    :raises TriggerParseError: unknown zone name, or a tzinfo without an IANA name
    """
    if tz is None:
        return _zone_by_name(local_zone_name())
    if isinstance(tz, str):
        return _zone_by_name(tz)
    if isinstance(tz, zoneinfo.ZoneInfo):
        return _zone_by_name(tz.key) if tz.key else tz
    if tz is UTC or (isinstance(tz, timezone) and tz.utcoffset(None) == timedelta(0)):
        return _zone_by_name("UTC")
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(name, str):
        return _zone_by_name(name)
    raise TriggerParseError(
        f"Time zone {tz!r} has no IANA name; pass a name such as 'Europe/Paris' "
        "(zones with daylight saving time need their rules, not a fixed offset)"
    )


def zone_name(tz: zoneinfo.ZoneInfo) -> str:
    """The name a zone is stored and shown under."""
    return _canonical(tz.key) if tz.key else str(tz)


def wall_to_ts(wall: datetime, tz: tzinfo) -> float:
    """The instant of the naive local time ``wall`` in ``tz``, with nbsched's DST rules.

    * a repeated wall time (fall back) means its **first** occurrence (``fold=0``);
    * a nonexistent wall time (spring forward) means the **first valid instant after it**,
      i.e. the instant the clocks jumped (Berlin 02:30 on the spring-forward day -> 03:00).
    """
    aware = wall.replace(tzinfo=tz, fold=0)
    ts = aware.timestamp()
    if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == wall:
        return ts
    # In a gap, fold=0 applies the offset from before the jump (an instant after the jump)
    # and fold=1 the one from after it (an instant before the jump): bisect between them.
    before = wall.replace(tzinfo=tz, fold=1).timestamp()
    low, high = min(ts, before), max(ts, before)
    change = next_offset_change(tz, low, high)
    return high if change is None else change


@lru_cache(maxsize=64)
def _fixed(offset: timedelta) -> timezone:
    return timezone(offset)


def local_datetime(ts: float, tz: tzinfo) -> datetime:
    """The instant ``ts`` as local time in ``tz``, carrying a *fixed* UTC offset.

    Its fields read as the local wall clock (``.hour == 9``), and comparing or subtracting
    such datetimes is exact. With the ``ZoneInfo`` itself attached it would not be: Python
    compares two datetimes that share a tzinfo by wall time, so Berlin 02:30 CEST and 02:30
    CET (an hour apart) would compare equal and subtract to zero.
    """
    local = datetime.fromtimestamp(ts, tz)
    offset = local.utcoffset()
    return local if offset is None else local.replace(tzinfo=_fixed(offset), fold=0)


def _offset(tz: tzinfo, ts: float) -> timedelta | None:
    return datetime.fromtimestamp(ts, tz).utcoffset()


def next_offset_change(tz: tzinfo, after: float, until: float) -> float | None:
    """The first instant in ``(after, until]`` at which the UTC offset of ``tz`` differs from
    the offset at ``after``, or ``None`` if the offset stays the same.

    tzdata transitions fall on whole seconds, so the answer is an integer number of seconds.
    """
    if until <= after:
        return None
    base = _offset(tz, after)
    low = after
    # Probe forward a day at a time so that a change and its reversal (summer time inside a
    # long span) are not both stepped over.
    while True:
        high = min(low + _PROBE, until)
        if _offset(tz, high) != base:
            break
        if high >= until:
            return None
        low = high
    # offset(floor(low)) == base (transitions fall on whole seconds, and none lies in
    # (floor(low), low]) and offset(ceil(high)) != base: bisect on whole seconds.
    lo, hi = math.floor(low), math.ceil(high)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == base:
            lo = mid
        else:
            hi = mid
    return float(hi)
