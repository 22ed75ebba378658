"""Time zones by name: the one check of a zone name for the whole of nbsched.

:func:`check_zone` turns an IANA name into a ``ZoneInfo`` or raises one message (with a
"did you mean") for an unknown zone; the scheduler, the triggers, the magics and the kernel
configuration all call it, so a zone accepted in one place is accepted everywhere.
:func:`resolve_zone` also takes tzinfo objects and ``None`` (the machine's zone), for the
``timezone=`` arguments of the API.
"""

from __future__ import annotations

import warnings
import zoneinfo
from datetime import UTC, timedelta, timezone, tzinfo
from functools import lru_cache

from ..errors import TriggerParseError, did_you_mean

__all__ = ["check_zone", "resolve_zone", "zone_name", "local_zone_name"]


# Spellings of UTC that tzdata keeps as links; stored and shown as plain "UTC".
_UTC_ALIASES = frozenset(
    {"utc", "etc/utc", "etc/uct", "uct", "etc/universal", "universal", "etc/zulu", "zulu"}
)


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


def check_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone named ``name``: an IANA name such as ``"Europe/Paris"`` or ``"UTC"``, in any
    letter case, surrounding spaces ignored.

    :raises TriggerParseError: ``"Unknown time zone 'Europe/Pariss' (did you mean
        'Europe/Paris'?)"``, or, with no close name, a hint at the IANA form
    """
    if not isinstance(name, str):
        raise TriggerParseError(
            f"A time zone must be an IANA name such as 'Europe/Paris', got {name!r}"
        )
    return _zone_by_name(name)


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
    """Turn a ``timezone`` argument into a ``ZoneInfo``.

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
