"""The one zone check (``nbsched.triggers.zones.check_zone``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from nbsched.errors import NbschedError, TriggerParseError
from nbsched.triggers.zones import check_zone, resolve_zone, zone_name


@pytest.mark.parametrize(
    ("name", "key"),
    [("Europe/Paris", "Europe/Paris"), (" europe/paris ", "Europe/Paris"), ("utc", "UTC"),
     ("Etc/UTC", "UTC"), ("Australia/Lord_Howe", "Australia/Lord_Howe")],
)  # fmt: skip
def test_names(name: str, key: str) -> None:
    zone = check_zone(name)
    assert isinstance(zone, ZoneInfo) and zone_name(zone) == key
    assert resolve_zone(name) is zone


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Europe/Pariss", "Unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?)"),
        ("Nowhere", "Unknown time zone 'Nowhere' (use an IANA name such as 'Europe/Paris' or "
                    "'UTC')"),
        ("", "Unknown time zone '' (use an IANA name such as 'Europe/Paris' or 'UTC')"),
        ("../etc/passwd", "Unknown time zone '../etc/passwd'"),
        (3, "A time zone must be an IANA name such as 'Europe/Paris', got 3"),
    ],
)  # fmt: skip
def test_one_message_for_an_unknown_zone(name: object, message: str) -> None:
    with pytest.raises(TriggerParseError) as info:
        check_zone(name)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert isinstance(info.value, NbschedError) and isinstance(info.value, ValueError)
