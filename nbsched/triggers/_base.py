"""Helpers shared by the trigger classes (private): datetimes in and out, state checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from .._clock import SystemClock
from ..errors import InvalidArgumentError, StateVersionError, TriggerParseError
from ._walltime import local_datetime, wall_to_ts

__all__ = [
    "STATE_VERSION",
    "to_aware",
    "require_aware",
    "iso",
    "format_local",
    "restore",
    "now_ts",
]

#: the version of the ``to_state()`` format written by this nbsched
STATE_VERSION = 1

T = TypeVar("T")


def to_aware(value: datetime | str | None, tz: tzinfo, what: str) -> datetime | None:
    """Make a user-supplied datetime aware: local time in ``tz`` with a fixed UTC offset
    (see :func:`~._walltime.local_datetime` for why not the ``ZoneInfo`` itself).

    Naive values (and ISO strings without an offset) are wall-clock times in ``tz``, with the
    same DST rules as cron: a nonexistent time means the first valid instant after it, a
    repeated one its first occurrence.

    :param what: the parameter name, for error messages
    :raises TriggerParseError: a string that is not an ISO 8601 date/time
    :raises InvalidArgumentError: neither a datetime nor a string
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise TriggerParseError(
                f"Bad {what} {value!r}: expected an ISO 8601 date/time such as "
                "'2026-12-01 09:00' or '2026-12-01T09:00+01:00'"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(
            f"{what} must be a datetime or an ISO 8601 string, got {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        return local_datetime(wall_to_ts(value.replace(tzinfo=None), tz), tz)
    return local_datetime(value.timestamp(), tz)


def now_ts() -> float:
    """The system clock: when a trigger made without a start is anchored (the scheduler
    moves that anchor to the job's start, read from its own clock)."""
    # on the microsecond grid of datetimes, so that the ISO text of the start in a trigger's
    # state (and repr) reads back as the same float
    return datetime.fromtimestamp(SystemClock.time(), UTC).timestamp()


def require_aware(after: datetime, what: str = "after") -> float:
    """POSIX seconds of ``after``, which must be aware (a naive one would silently mean the
    machine's zone).

    :param what: the parameter name, for error messages
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise InvalidArgumentError(
            f"{what} must be an aware datetime, got naive {after.isoformat()!r}; "
            "add tzinfo=datetime.timezone.utc or a ZoneInfo"
        )
    return after.timestamp()


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset and microseconds, for state (exact round trip)."""
    return None if value is None else value.isoformat()


def format_local(value: datetime) -> str:
    """``2026-12-01 09:00`` (seconds only when not zero), in ``value``'s own zone."""
    return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")


def restore(kind: str, state: Mapping[str, Any], build: Callable[[], T]) -> T:
    """Check ``state``'s version, then build the trigger; any failure becomes one
    ``StateVersionError`` that says which trigger could not be restored and why.

    :param kind: the ``type_name`` the state must carry
    """
    version = state.get("version")
    if state.get("type") != kind:
        raise StateVersionError(
            f"Cannot restore a {kind} trigger from state of type {state.get('type')!r}"
        )
    if version != STATE_VERSION:
        raise StateVersionError(
            f"Cannot read {kind} trigger state version {version!r}: this nbsched reads "
            f"version {STATE_VERSION}; the state was probably written by a newer nbsched "
            "(upgrade nbsched to read it)"
        )
    try:
        return build()
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise StateVersionError(
            f"Cannot restore {kind} trigger from stored state ({detail})"
        ) from exc
