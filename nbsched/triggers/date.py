"""``DateTrigger``: fire once, at a date and time or a delay after the job is added.

A delay is counted from when the trigger is made (the system clock), provisionally:
:meth:`DateTrigger.anchor`, which the scheduler calls when the job is added, counts it from
the job's start instead. Either way the trigger has one fixed fire time, whatever ``after``
it is asked with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from ..abc import Trigger
from ..errors import InvalidArgumentError
from ._base import STATE_VERSION, format_local, iso, now_ts, require_aware, restore, to_aware
from ._walltime import local_datetime
from .registry import register_trigger
from .zones import resolve_zone, zone_name

__all__ = ["DateTrigger"]


@register_trigger
class DateTrigger(Trigger):
    """Fires once: at ``run_date``, or ``delay`` after the job is added.

    Give exactly one of ``run_date`` and ``delay``. A ``delay`` trigger (``"in 10
    minutes"``, :meth:`after`) fires ``delay`` after it was made; :meth:`anchor`, which the
    scheduler calls when the job is added, counts the delay from the job's start instead.

    :param run_date: aware datetime, ISO 8601 string, or naive datetime meaning a wall time
        in ``timezone`` (a nonexistent one means the first valid instant after it, a repeated
        one its first occurrence)
    :param timezone: IANA zone name or tzinfo, for naive ``run_date`` and for display;
        ``None`` means the machine's local zone
    :param delay: seconds or ``timedelta`` (greater than zero)
    :raises InvalidArgumentError: both or neither of ``run_date`` and ``delay``, or a
        non-positive delay
    :raises TriggerParseError: unknown zone, or a string that is not an ISO date/time
    """

    type_name = "date"
    __slots__ = ("_tz", "_run_date", "_delay", "_run_ts", "_delay_s")

    def __init__(
        self,
        run_date: datetime | str | None = None,
        *,
        timezone: str | tzinfo | None = None,
        delay: float | timedelta | None = None,
    ) -> None:
        if (run_date is None) == (delay is None):
            raise InvalidArgumentError(
                "DateTrigger needs exactly one of run_date (when) and delay (how long after "
                "the job is added)"
            )
        self._tz = resolve_zone(timezone)
        self._delay = None if delay is None else _positive_delay(delay)
        self._delay_s = None if self._delay is None else self._delay.total_seconds()
        if self._delay_s is not None:
            self._run_ts = now_ts() + self._delay_s
            self._run_date = local_datetime(self._run_ts, self._tz)
        else:
            aware = to_aware(run_date, self._tz, "run_date")
            assert aware is not None
            self._run_date, self._run_ts = aware, aware.timestamp()

    @classmethod
    def _provisional(cls, run_ts: float, delay: float, tz: str | tzinfo) -> DateTrigger:
        """A delay trigger whose delay was counted to ``run_ts`` (a restored state)."""
        trigger = cls(delay=delay, timezone=tz)
        trigger._run_ts = run_ts
        trigger._run_date = local_datetime(run_ts, trigger._tz)
        return trigger

    @classmethod
    def after(
        cls, delay: float | timedelta, *, timezone: str | tzinfo | None = None
    ) -> DateTrigger:
        """A trigger firing once, ``delay`` (seconds or ``timedelta``) after the job is
        added: ``DateTrigger.after(600)`` is ``"in 10 minutes"``."""
        return cls(delay=delay, timezone=timezone)

    # -- values -----------------------------------------------------------------------------

    @property
    def run_date(self) -> datetime:
        """When it fires (in :attr:`timezone`)."""
        return self._run_date

    @property
    def provisional(self) -> bool:
        """True for a delay not yet counted from a job's start: :meth:`anchor` will."""
        return self._delay is not None

    @property
    def delay(self) -> timedelta | None:
        """The delay :meth:`anchor` will count from the job's start, or ``None`` (a date, or
        a delay anchored already)."""
        return self._delay

    @property
    def timezone(self) -> tzinfo:
        """The zone :attr:`run_date` is shown in."""
        return self._tz

    def _key(self) -> tuple[Any, ...]:
        # equal triggers have the same fire time (a pending delay is not part of that)
        return (self._run_ts, zone_name(self._tz))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DateTrigger):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.type_name, self._key()))

    def __repr__(self) -> str:
        return f"DateTrigger({iso(self._run_date)!r}, timezone={zone_name(self._tz)!r})"

    # -- fire times -------------------------------------------------------------------------

    def next_fire_time(self, after: datetime) -> datetime | None:
        """``run_date`` if it is strictly after ``after``, else ``None`` (local time with a
        fixed UTC offset, like :meth:`CronTrigger.next_fire_time`)."""
        ts = self.next_fire_ts(require_aware(after))
        return None if ts is None else local_datetime(ts, self._tz)

    def next_fire_ts(self, after: float) -> float | None:
        return self._run_ts if self._run_ts > after else None

    def anchor(self, now: datetime) -> DateTrigger:
        """Count a delay from ``now``: the date ``now + delay``, for good. A dated trigger (or
        one anchored already) is returned as is."""
        if self._delay is None:
            return self
        require_aware(now, "now")
        # in UTC: ``zoned + timedelta`` would move the wall clock, not elapsed time
        return DateTrigger(now.astimezone(UTC) + self._delay, timezone=self._tz)

    # -- words and state --------------------------------------------------------------------

    def describe(self) -> str:
        """``"Once, at 2026-12-01 09:00 (Europe/Paris)"``."""
        return f"Once, at {format_local(self._run_date)} ({zone_name(self._tz)})"

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "type": self.type_name,
            "run_date": iso(self._run_date),
            "delay": self._delay_s,
            "timezone": zone_name(self._tz),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DateTrigger:
        return restore(cls.type_name, state, lambda: cls._from_stored(state))

    @classmethod
    def _from_stored(cls, state: Mapping[str, Any]) -> DateTrigger:
        run_date, delay, zone = state.get("run_date"), state.get("delay"), state["timezone"]
        if run_date is not None and delay is not None:  # provisional: both are kept
            when = to_aware(run_date, resolve_zone(zone), "run_date")
            assert when is not None
            return cls._provisional(when.timestamp(), delay, zone)
        return cls(run_date, timezone=zone, delay=delay)


def _positive_delay(delay: float | timedelta) -> timedelta:
    if isinstance(delay, timedelta):
        value = delay
    elif isinstance(delay, int | float) and not isinstance(delay, bool) and math.isfinite(delay):
        value = timedelta(seconds=delay)
    else:
        raise InvalidArgumentError(f"delay must be seconds or a timedelta, got {delay!r}")
    if value <= timedelta(0):
        raise InvalidArgumentError(
            f"delay must be longer than zero, got {value.total_seconds()!r} s"
        )
    return value
