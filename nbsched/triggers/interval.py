"""``IntervalTrigger``: every N seconds of elapsed time.

Fire times are ``start + k * interval`` for ``k = 0, 1, 2, ...`` -- computed from the start
every time, never by adding to the previous fire time or to "now", so nothing drifts and a
late or missed run does not shift the schedule.

Arithmetic is on absolute time (UTC), never on wall clocks: in Python, ``aware + timedelta``
moves the *wall* time and keeps the zone, which across a DST change gives an interval one
hour too long or too short (APScheduler 4's ``IntervalTrigger`` skips the repeated hour for
exactly this reason). So a 1-hour interval stays exactly 3600 s apart across DST, and a
1-day interval started at 09:00 fires at 08:00 or 10:00 local after a change; use a cron
trigger (``"daily at 09:00"``) to keep a wall-clock time.

A trigger is a fixed schedule: with no ``start`` it starts when it is made (the system
clock), and that start is *provisional*: :meth:`IntervalTrigger.anchor`, which the scheduler
calls when the job is added, moves it to the job's start. Either way the fire times never
depend on the ``after`` they are asked with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from ..abc import Trigger
from ..errors import InvalidArgumentError
from ._base import STATE_VERSION, format_local, iso, now_ts, require_aware, restore, to_aware
from .durations import duration_in_words
from .registry import register_trigger
from .zones import resolve_zone

__all__ = ["IntervalTrigger"]

#: a fire time closer than this to ``after`` counts as equal to it (float noise; fire times
#: and datetimes live on a microsecond grid, so real differences are at least 1 µs)
_EPS = 5e-7


@register_trigger
class IntervalTrigger(Trigger):
    """Fires every ``interval`` of elapsed time, at ``start + k * interval`` (``k >= 0``).

    ``start`` is normally left out: the trigger then starts when it is made, provisionally,
    and :meth:`anchor` (called by the scheduler when the job is added) moves the start to
    the job's start, so ``every 10s`` added at T fires first at T + 10 s. A start that is
    given is kept.

    :param interval: seconds (``int``/``float``) or a ``timedelta``; rounded to microseconds
        and greater than zero
    :param start: the first fire time (aware datetime, ISO string, or naive = the machine's
        local zone); ``None``: now, until :meth:`anchor` moves it
    :param end: no fire time is later than this (inclusive)
    :raises InvalidArgumentError: a non-positive interval, or ``end`` before ``start``
    """

    type_name = "interval"
    # Floats only (POSIX seconds): one trigger per job, and 10k jobs should not each carry a
    # timedelta and two datetimes. The datetime API rebuilds them exactly (microsecond grid).
    __slots__ = ("_iv", "_start_ts", "_end_ts")
    # Provisional (no start given, not anchored yet) is a class of its own rather than one
    # more slot on every trigger: anchored triggers are the ones kept per job.
    _provisional: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> IntervalTrigger:
        # (without arguments: unpickling, which brings back the class it was; a subclass
        # keeps its own class, and __init__ marks it provisional on the instance)
        made_now = bool(args or kwargs) and kwargs.get("start") is None
        return object.__new__(_ProvisionalInterval if made_now and cls is IntervalTrigger else cls)

    def __init__(
        self,
        interval: float | timedelta,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> None:
        if isinstance(interval, timedelta):
            delta = interval
        elif isinstance(interval, int | float) and not isinstance(interval, bool):
            if not math.isfinite(interval):
                raise InvalidArgumentError(f"interval must be a finite number, got {interval!r}")
            delta = timedelta(seconds=interval)
        else:
            raise InvalidArgumentError(
                f"interval must be seconds or a timedelta, got {type(interval).__name__}"
            )
        if delta <= timedelta(0):
            raise InvalidArgumentError(
                f"interval must be longer than zero, got {delta.total_seconds()!r} s; "
                "use e.g. 10 (seconds) or timedelta(minutes=5)"
            )
        # the machine's zone reads naive or string times only (looking it up costs ~8 µs,
        # which adds up when a store of 10k jobs is loaded)
        local = resolve_zone(None) if _naive(start) or _naive(end) else UTC
        start_dt = to_aware(start, local, "start")
        end_dt = to_aware(end, local, "end")
        if start_dt is not None and end_dt is not None and end_dt < start_dt:
            raise InvalidArgumentError(
                f"end ({end_dt.isoformat()}) is before start ({start_dt.isoformat()})"
            )
        self._iv = delta.total_seconds()
        self._end_ts = None if end_dt is None else end_dt.timestamp()
        if start_dt is None and not self._provisional:
            self._provisional = True  # type: ignore[misc]  # (a subclass with a __dict__)
        self._start_ts = (
            _clamp(now_ts(), self._end_ts) if start_dt is None else start_dt.timestamp()
        )

    @classmethod
    def _make(
        cls, iv: float, start_ts: float, end_ts: float | None, provisional: bool
    ) -> IntervalTrigger:
        """An instance from checked values, without the constructor's conversions (one per
        job: adding or loading 10k jobs builds 10k of these)."""
        trigger = object.__new__(_ProvisionalInterval if provisional else cls)
        trigger._iv, trigger._start_ts, trigger._end_ts = iv, start_ts, end_ts
        return trigger

    # -- values -----------------------------------------------------------------------------

    @property
    def interval(self) -> timedelta:
        """The time between two fire times."""
        return timedelta(seconds=self._iv)

    @property
    def start(self) -> datetime:
        """The first fire time (UTC)."""
        return datetime.fromtimestamp(self._start_ts, UTC)

    @property
    def provisional(self) -> bool:
        """True when no start was given: :meth:`anchor` then moves the start to the job's."""
        return self._provisional

    @property
    def end(self) -> datetime | None:
        """The latest possible fire time (UTC), or ``None``."""
        return _utc(self._end_ts)

    @property
    def timezone(self) -> tzinfo | None:
        """``None``: elapsed time does not depend on a zone."""
        return None

    def _key(self) -> tuple[Any, ...]:
        # equal triggers have the same fire times (being provisional is not part of that)
        return (self._iv, self._start_ts, self._end_ts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalTrigger):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.type_name, self._key()))

    def __repr__(self) -> str:
        args = [repr(self._iv), f"start={iso(self.start)!r}"]
        if self._end_ts is not None:
            args.append(f"end={iso(self.end)!r}")
        return f"IntervalTrigger({', '.join(args)})"

    # -- fire times -------------------------------------------------------------------------

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first ``start + k * interval`` strictly after ``after`` (exact integer
        microsecond arithmetic), or ``None`` past ``end``.

        :param after: an aware datetime
        """
        require_aware(after)
        after = after.astimezone(UTC)
        interval, end, start = self.interval, self.end, self.start
        if after < start:
            fire = start
        else:
            # timedelta // timedelta is an exact integer division on microseconds
            k = (after - start) // interval + 1
            fire = start + interval * k
        if end is not None and fire > end:
            return None
        return fire

    def next_fire_ts(self, after: float) -> float | None:
        """Float version of :meth:`next_fire_time` for the scheduler's hot path; agrees with
        it to well under a microsecond."""
        start = self._start_ts
        iv = self._iv
        if after < start:
            fire = start
        else:
            k = (after - start) // iv + 1.0
            fire = start + k * iv
            # guard the floor against float rounding either way
            if fire - after < _EPS:
                fire = start + (k + 1.0) * iv
            elif fire - iv - after >= _EPS:
                fire -= iv
        end = self._end_ts
        if end is not None and fire > end + _EPS:
            return None
        return fire

    def anchor(self, now: datetime) -> IntervalTrigger:
        """A copy starting at ``now`` (for good) when no start was given, else ``self``. The
        scheduler then asks for the first fire time strictly after ``now``: ``now +
        interval``."""
        if not self._provisional:
            return self
        start_ts = _clamp(require_aware(now, "now"), self._end_ts)
        return IntervalTrigger._make(self._iv, start_ts, self._end_ts, False)

    # -- words and state --------------------------------------------------------------------

    def describe(self) -> str:
        """``"Every 10 seconds"``, ``"Every hour"``, ``"Every 1 hour and 30 minutes"``."""
        words = duration_in_words(self.interval)
        if words in ("1 second", "1 minute", "1 hour"):
            text = f"Every {words[2:]}"  # "Every hour", as cron-descriptor says
            # (but not "Every day": parse_trigger reads that as daily at midnight, on the
            # wall clock, while this is 24 h of elapsed time)
        else:
            text = f"Every {words}"
        end = self.end
        if end is not None:
            text += f", until {format_local(end)} UTC"
        return text

    def to_state(self) -> dict[str, Any]:
        state = {
            "version": STATE_VERSION,
            "type": self.type_name,
            "interval": self._iv,
            "start": iso(self.start),
            "end": iso(self.end),
        }
        if self._provisional:  # (only then: the states of anchored jobs stay as they are)
            state["provisional"] = True
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> IntervalTrigger:
        return restore(cls.type_name, state, lambda: cls._from_stored(state))

    @classmethod
    def _from_stored(cls, state: Mapping[str, Any]) -> IntervalTrigger:
        # The common case straight to floats: to_state() writes a positive float and times
        # with their UTC offset. A scheduler that restarts over 10k jobs reads 10k of these,
        # and the constructor's general path (zone lookup, fixed-offset datetimes) was half
        # of the load. Anything else goes through the constructor and its checks.
        interval, start, end = state["interval"], state.get("start"), state.get("end")
        provisional = state.get("provisional", False) is True
        start_ts, end_ts = _stored_ts(start), _stored_ts(end)
        seconds = (
            timedelta(seconds=interval).total_seconds()  # (µs, as the constructor rounds)
            if type(interval) is float and 0.0 < interval < math.inf
            else 0.0
        )
        if (
            seconds > 0.0
            and start_ts is not None
            and (end is None or end_ts is not None)
            and (end_ts is None or start_ts <= end_ts)
        ):
            return cls._make(seconds, start_ts, end_ts, provisional)
        # (a state without a start starts now, provisionally, as the constructor does)
        trigger = cls(interval, start=start, end=end)
        if provisional and not trigger._provisional:
            trigger = cls._make(trigger._iv, trigger._start_ts, trigger._end_ts, True)
        return trigger


class _ProvisionalInterval(IntervalTrigger):
    """An :class:`IntervalTrigger` made without a start (see :attr:`provisional`)."""

    __slots__ = ()
    _provisional = True


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _clamp(start_ts: float, end_ts: float | None) -> float:
    """A start made "now" that is past ``end``: the end, so that start <= end holds and the
    trigger (already over) never fires after now."""
    return start_ts if end_ts is None or start_ts <= end_ts else end_ts


def _stored_ts(value: object) -> float | None:
    """POSIX seconds of a stored ISO time that carries its UTC offset, else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()


def _naive(value: object) -> bool:
    return isinstance(value, str) or isinstance(value, datetime) and value.tzinfo is None
