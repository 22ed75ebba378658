"""A brute-force cron oracle for the property tests: slow, obvious, and independent of both
cronsim and nbsched's DST code (it only uses zoneinfo to map instants and wall times).

It scans minute by minute and applies the documented rules of ``nbsched.triggers.cron``:

* every-minute/hour expressions (minute or hour field starts with ``*``): every instant
  whose local wall time matches;
* fixed-time expressions: every matching local wall time, once; a nonexistent one at the
  first valid wall time after it, a repeated one at its first occurrence.

Expressions use numbers only (no names), 5 fields.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

MINUTE = timedelta(minutes=1)


def _expand(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for term in field.split(","):
        base, _, step_text = term.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-")
            first, last = int(a), int(b)
        else:
            first = int(base)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


class Cron:
    """A 5-field numeric cron expression, matched the slow way."""

    def __init__(self, expr: str) -> None:
        minute, hour, dom, month, dow = expr.split()
        self.minutes = _expand(minute, 0, 59)
        self.hours = _expand(hour, 0, 23)
        self.doms = _expand(dom, 1, 31)
        self.months = _expand(month, 1, 12)
        self.dows = {d % 7 for d in _expand(dow, 0, 7)}
        # Vixie cron: a '*'-started day field makes the two day fields AND, else OR
        self.day_and = dom.startswith("*") or dow.startswith("*")
        self.wall_clock = not (minute.startswith("*") or hour.startswith("*"))

    def matches(self, wall: datetime) -> bool:
        if wall.minute not in self.minutes or wall.hour not in self.hours:
            return False
        if wall.month not in self.months:
            return False
        dom_ok = wall.day in self.doms
        dow_ok = (wall.isoweekday() % 7) in self.dows
        return (dom_ok and dow_ok) if self.day_and else (dom_ok or dow_ok)


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _is_valid(wall: datetime, tz: tzinfo) -> bool:
    instant = datetime.fromtimestamp(wall.replace(tzinfo=tz).timestamp(), tz)
    return instant.replace(tzinfo=None) == wall


def oracle_fires(
    expr: str, tz: tzinfo, after: datetime, horizon: timedelta = timedelta(days=3)
) -> list[datetime]:
    """All fire instants (UTC, sorted, distinct) in ``(after, after + horizon]``."""
    cron = Cron(expr)
    end = after + horizon
    fires: set[datetime] = set()
    if not cron.wall_clock:
        instant = after.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
        while instant <= end:
            if cron.matches(_wall(instant, tz)):
                fires.add(instant)
            instant += MINUTE
    else:
        margin = timedelta(hours=4)  # more than any DST shift
        wall = _wall(after, tz).replace(second=0, microsecond=0) - margin
        last = _wall(end, tz) + margin
        while wall <= last:
            if cron.matches(wall):
                valid = wall
                while not _is_valid(valid, tz):  # first valid wall time after a gap
                    valid += MINUTE
                instant = valid.replace(tzinfo=tz, fold=0).astimezone(UTC)
                if after < instant <= end:
                    fires.add(instant)
            wall += MINUTE
    return sorted(fires)


def offset_changes(tz: tzinfo, first_year: int, last_year: int) -> list[datetime]:
    """The instants (UTC) at which the UTC offset of ``tz`` changes, found by an hourly scan
    and a minute-by-minute refinement (no cleverness to get wrong)."""
    changes = []
    instant = datetime(first_year, 1, 1, tzinfo=UTC)
    stop = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    previous = instant.astimezone(tz).utcoffset()
    while instant < stop:
        nxt = instant + timedelta(hours=1)
        offset = nxt.astimezone(tz).utcoffset()
        if offset != previous:
            probe = instant
            while probe.astimezone(tz).utcoffset() == previous:
                probe += MINUTE
            changes.append(probe)
            previous = offset
        instant = nxt
    return changes
