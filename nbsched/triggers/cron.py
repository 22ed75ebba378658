"""``CronTrigger``: crontab schedules in an IANA time zone, with cron's DST rules.

Which calendar times match an expression is computed by **cronsim** (small, typed, no
dependencies, Debian-cron semantics, about 10 µs per step). cronsim is only ever given
*naive wall-clock* times; turning wall times into instants is done here, because neither
cronsim nor croniter gets the DST rules below right on aware datetimes. What each did, run
with cronsim 2.8 and croniter 7.0 (Berlin, 2026; the evidence for this choice, kept here
rather than as tests, which would break the day either library changes):

* croniter fires a fixed-time job twice in the repeated hour: ``croniter("30 2 * * *",
  datetime(2026, 10, 24, 12, tzinfo=BERLIN))`` gives 2026-10-25 00:30Z, then 01:30Z;
* cronsim has Debian's rules for 5-field expressions but skips 6-field ones in the gap and
  fires them twice in the fold: ``CronSim("0 30 2 * * *", <2026-03-28 12:00 Berlin>)``
  first gives 2026-03-30 (the 29th skipped), and from 2026-10-24 12:00 it gives 02:30 on
  the 25th twice;
* asked from inside the repeated hour, cronsim can return a time *before* the one it was
  given: ``next(CronSim("30 2 * * *", datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN,
  fold=1)))`` is 02:30 of the first pass, 45 minutes earlier;
* cronsim reads a one-value range with a step, ``0-0/1``, as ``0-59``; ``_cronexpr``
  writes such ranges as a plain value.

croniter was the other candidate; cronsim won for being small, typed and dependency-free,
with the same gaps on aware datetimes, which this module closes.

On naive datetimes cronsim is plain calendar arithmetic, which it does well; the property
tests check the whole (cronsim + this module) against a minute-by-minute brute-force oracle
in five zones around their DST changes.

DST rules (the contract, as cron users know them from Vixie/Debian cron)
------------------------------------------------------------------------
**Fixed-time jobs** -- neither the minute nor the hour field starts with ``*``
(``30 2 * * *``, ``0 9 * * mon-fri``, ``@daily``): each matching local wall time fires
exactly once.

* A wall time that does not exist (spring forward) fires once at the first valid instant
  after it: Berlin ``30 2 * * *`` on 2026-03-29 fires at 03:00 CEST (01:00Z). Several
  skipped times of one night (``0,30 2 * * *``) collapse into that one fire.
* A wall time that happens twice (fall back) fires once, at its first occurrence: New York
  ``30 1 * * *`` on 2026-11-01 fires at 01:30 EDT (05:30Z) only.

**Every-minute / every-hour jobs** -- the minute or hour field starts with ``*``
(``*/5 * * * *``, ``0 * * * *``, ``@hourly``, ``15 */2 * * *``, ``* 2 * * *``): they follow
elapsed time, firing at every instant whose local wall time matches. In the repeated hour
they fire in both passes (``*/15`` keeps firing every 15 minutes instead of pausing for 75),
and times inside the skipped hour simply do not happen (``30 * * * *`` fires at 01:30 CET
and then 03:30 CEST, one hour apart). This is cron's own rule (crontab(5): "Only jobs that
run at a particular time (not specified as @hourly, nor with '*' in the hour or minute
specifier) are affected"), so cron users get what they are used to.

Day-of-month and day-of-week: when both are restricted, a day matching either fires (cron's
OR); when either starts with ``*`` a day must match both (Vixie cron, cronsim).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from cron_descriptor import ExpressionDescriptor, Options
from cronsim import CronSim, CronSimError

from ..abc import Trigger
from ..errors import InvalidArgumentError, TriggerParseError
from ._base import STATE_VERSION, format_local, iso, require_aware, restore, to_aware
from ._cronexpr import CronExpr, parse_cron
from ._walltime import local_datetime, next_offset_change, wall_to_ts
from .registry import register_trigger
from .zones import resolve_zone, zone_name

__all__ = ["CronTrigger"]

_SECOND = timedelta(seconds=1)


@register_trigger
class CronTrigger(Trigger):
    """Fires when the local wall clock in ``timezone`` matches a cron expression.

    :param expr: 5 fields ``minute hour day month weekday`` (0 and 7 are Sunday; names such
        as ``mon-fri`` and ``jan``), 6 with a seconds field first, or ``@hourly``,
        ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``
    :param timezone: IANA zone name or tzinfo; ``None`` means the machine's local zone
    :param start: no fire time before this (inclusive); naive means in ``timezone``
    :param end: no fire time after this (inclusive); naive means in ``timezone``
    :raises TriggerParseError: a bad expression (naming the field and its range) or zone
    :raises InvalidArgumentError: ``end`` before ``start``
    """

    type_name = "cron"
    __slots__ = ("_expr", "_tz", "_utc", "_start", "_end", "_start_ts", "_end_ts")

    def __init__(
        self,
        expr: str,
        *,
        timezone: str | tzinfo | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> None:
        if not isinstance(expr, str):
            raise InvalidArgumentError(
                f"cron expression must be a string, got {type(expr).__name__}"
            )
        self._expr: CronExpr = parse_cron(expr)
        self._tz = resolve_zone(timezone)
        self._utc = zone_name(self._tz) == "UTC"  # no offset changes to look for
        self._start = to_aware(start, self._tz, "start")
        self._end = to_aware(end, self._tz, "end")
        if self._start is not None and self._end is not None and self._end < self._start:
            raise InvalidArgumentError(
                f"end ({self._end.isoformat()}) is before start ({self._start.isoformat()})"
            )
        self._start_ts = None if self._start is None else self._start.timestamp()
        self._end_ts = None if self._end is None else self._end.timestamp()

    # -- values -----------------------------------------------------------------------------

    @property
    def expr(self) -> str:
        """The expression as written (spaces collapsed)."""
        return self._expr.text

    @property
    def timezone(self) -> tzinfo:
        """The zone whose wall clock the expression is read in."""
        return self._tz

    @property
    def start(self) -> datetime | None:
        """No fire time is earlier than this."""
        return self._start

    @property
    def end(self) -> datetime | None:
        """No fire time is later than this."""
        return self._end

    def _key(self) -> tuple[Any, ...]:
        return (self._expr.fields, zone_name(self._tz), self._start_ts, self._end_ts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronTrigger):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.type_name, self._key()))

    def __repr__(self) -> str:
        args = [repr(self._expr.text), f"timezone={zone_name(self._tz)!r}"]
        if self._start is not None:
            args.append(f"start={iso(self._start)!r}")
        if self._end is not None:
            args.append(f"end={iso(self._end)!r}")
        return f"CronTrigger({', '.join(args)})"

    # -- fire times -------------------------------------------------------------------------

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first matching time strictly after ``after`` (an aware datetime), or ``None``
        past ``end`` or if nothing matches for 50 years. The result reads as local time in
        :attr:`timezone` but carries a fixed UTC offset, so comparing and subtracting fire
        times is exact even inside a repeated hour."""
        ts = self.next_fire_ts(require_aware(after))
        return None if ts is None else local_datetime(ts, self._tz)

    def next_fire_ts(self, after: float) -> float | None:
        """:meth:`next_fire_time` on POSIX seconds (what the scheduler calls)."""
        start = self._start_ts
        if start is not None and after < start:
            fire = self._next(start - 1.0)  # fire times >= start, so begin just before it
            while fire is not None and fire < start:
                fire = self._next(fire)
        else:
            fire = self._next(after)
        if fire is not None and self._end_ts is not None and fire > self._end_ts:
            return None
        return fire

    def _next(self, after: float) -> float | None:
        if self._expr.wall_clock:
            return self._next_wall_clock(after)
        return self._next_elapsed(after)

    def _next_wall_clock(self, after: float) -> float | None:
        """Fixed-time jobs: each matching wall time once (first occurrence; gap -> the
        instant the clocks jumped). That mapping only ever moves forward as the wall time
        grows, so the answer is the first matching wall time past ``after``'s own."""
        local = datetime.fromtimestamp(after, self._tz)
        wall = local.replace(tzinfo=None)
        if local.fold:
            # ``after`` is in the second pass of a repeated hour, whose wall times we fired
            # at (or skipped) in the first pass. Resume at the first wall time after the
            # repeated hour: the jump back happened at most ``first - second`` ago.
            first, second = wall.replace(tzinfo=self._tz, fold=0).utcoffset(), local.utcoffset()
            if first is not None and second is not None and first > second:
                back = (first - second).total_seconds()
                jump = next_offset_change(self._tz, after - back, after)
                if jump is not None:
                    after_fold = datetime.fromtimestamp(jump, UTC).replace(tzinfo=None) + first
                    wall = after_fold - _SECOND  # so that after_fold itself is a candidate
        candidate = _cron_next(self._expr.canonical, wall)
        return None if candidate is None else wall_to_ts(candidate, self._tz)

    def _next_elapsed(self, after: float) -> float | None:
        """Every-minute/hour jobs: the first instant whose wall time matches. Within one
        UTC offset wall time and instant move together; at an offset change, start over from
        the change (inclusive) with the new offset."""
        t = after
        inclusive = False
        # Terminates: every pass either returns or moves ``t`` forward to an offset change
        # before the candidate, and cronsim gives up on candidates 50 years away (about 100
        # changes in a DST zone; a rare schedule such as "Sundays that are January 1st" may
        # need a dozen passes).
        while True:
            local = datetime.fromtimestamp(t, self._tz)
            offset = local.utcoffset()
            assert offset is not None
            wall = local.replace(tzinfo=None)
            candidate = _cron_next(self._expr.canonical, wall - _SECOND if inclusive else wall)
            if candidate is None:
                return None
            fire = candidate.replace(tzinfo=UTC).timestamp() - offset.total_seconds()
            if self._utc:
                return fire
            change = next_offset_change(self._tz, t, fire)
            if change is None:
                return fire
            t, inclusive = change, True

    # -- words and state --------------------------------------------------------------------

    def describe(self) -> str:
        """The schedule in words, by cron-descriptor: ``"At 09:30, Monday through Friday"``.

        The zone is not repeated here (it is :attr:`timezone`; show it next to the words
        where it matters), so the words stay the ones crontab users read everywhere.
        """
        text = _describe(self._expr.for_description)
        if self._start is not None:
            text += f", from {format_local(self._start)}"
        if self._end is not None:
            text += f", until {format_local(self._end)}"
        return text

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "type": self.type_name,
            "expr": self._expr.text,
            "timezone": zone_name(self._tz),
            "start": iso(self._start),
            "end": iso(self._end),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CronTrigger:
        return restore(
            cls.type_name,
            state,
            lambda: cls(
                state["expr"],
                timezone=state["timezone"],
                start=state.get("start"),
                end=state.get("end"),
            ),
        )


def _cron_next(canonical: str, wall: datetime) -> datetime | None:
    """The first naive wall time strictly after ``wall`` (whole seconds) that matches."""
    try:
        return next(CronSim(canonical, wall), None)
    except CronSimError as exc:  # parse_cron accepted it, so this is a disagreement
        raise TriggerParseError(f"Bad cron expression {canonical!r}: {exc}") from None


@lru_cache(maxsize=512)
def _describe(expr: str) -> str:
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(expr, options).get_description())
    except Exception:  # cron-descriptor is a nicety: never let it break listing jobs
        return f"Cron {expr!r}"
