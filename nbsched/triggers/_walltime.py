"""Wall clocks and instants in a zone with daylight saving time (private): where a
nonexistent wall time lands, when the offset changes next, and local datetimes that compare
exactly.

zoneinfo answers "what is the offset at instant X" but has no public API for "when is the
next transition", so :func:`next_offset_change` probes and bisects. Transitions are rare
(about two a year), so the slow path runs rarely; the common case costs one offset lookup.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

__all__ = ["wall_to_ts", "next_offset_change", "local_datetime"]

#: the probe step of :func:`next_offset_change`. No zone in tzdata 2026 has two offset
#: changes less than 3 days apart (closest: Africa/Freetown in 1939, 4 days), so a daily
#: probe cannot step over a change and its reversal.
_PROBE = 86_400


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
