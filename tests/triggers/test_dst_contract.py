"""nbsched's DST contract, through the public schedule strings, in several zones.

A nonexistent local time (the clocks spring forward over it) fires once, at the first valid
instant after it; a repeated local time (the clocks fall back over it) fires once, at its
first occurrence. Checked on every 2026 offset change of zones north and south of the
equator, and of Lord Howe Island, whose clocks move by 30 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nbsched.abc import Trigger
from nbsched.triggers import parse_trigger

from ._oracle import offset_changes

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]


def _changes() -> list[tuple[str, datetime, timedelta, timedelta]]:
    """(zone, instant of the change, offset before, offset after) for each 2026 change."""
    out = []
    for name in ZONES:
        zone = ZoneInfo(name)
        for instant in offset_changes(zone, 2026, 2026):
            before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
            after = instant.astimezone(zone).utcoffset()
            assert before is not None and after is not None
            out.append((name, instant, before, after))
    return out


CHANGES = _changes()
GAPS = [c for c in CHANGES if c[3] > c[2]]
FOLDS = [c for c in CHANGES if c[3] < c[2]]


def _ids(change: tuple[str, datetime, timedelta, timedelta]) -> str:
    return f"{change[0]}-{change[1]:%Y-%m-%d}"


def _fires_in(trigger: Trigger, start: datetime, stop: datetime) -> list[datetime]:
    out: list[datetime] = []
    while (nxt := trigger.next_fire_time(start)) is not None and nxt < stop:
        out.append(nxt)
        start = nxt
    return out


#: a daily time written four ways (phrases and cron repeat it; the date fires it once)
FORMS = ["daily at {t}", "every day at {t}", "{m} {h} * * *", "at {d} {t}"]


def _schedule(form: str, wall: datetime) -> str:
    return form.format(t=f"{wall:%H:%M}", h=wall.hour, m=wall.minute, d=f"{wall:%Y-%m-%d}")


def _wall(instant: datetime, offset: timedelta) -> datetime:
    """The naive local time of ``instant`` at UTC offset ``offset``."""
    return instant.replace(tzinfo=None) + offset


def test_the_table_covers_both_directions_in_every_zone() -> None:
    assert sorted({c[0] for c in GAPS}) == sorted(ZONES) == sorted({c[0] for c in FOLDS})
    lord_howe = {c[3] - c[2] for c in CHANGES if c[0] == "Australia/Lord_Howe"}
    assert lord_howe == {timedelta(minutes=30), timedelta(minutes=-30)}


@pytest.mark.parametrize("change", GAPS, ids=_ids)
@pytest.mark.parametrize("form", FORMS)
def test_a_nonexistent_time_fires_once_at_the_first_valid_instant_after_it(
    change: tuple[str, datetime, timedelta, timedelta], form: str
) -> None:
    name, instant, before, after = change
    zone = ZoneInfo(name)
    # the middle of the skipped wall times: e.g. 02:30 when 02:00 jumps to 03:00
    missing = _wall(instant, before) + (after - before) / 2
    text = _schedule(form, missing)
    trigger = parse_trigger(text, timezone=name, now=instant - timedelta(days=2))
    day_start = instant - timedelta(hours=12)
    fires = _fires_in(trigger, day_start, instant + timedelta(hours=12))
    assert fires == [instant], text  # once, when the clocks jumped
    local = fires[0].astimezone(zone).replace(tzinfo=None)
    assert local == _wall(instant, after) and local > missing


@pytest.mark.parametrize("change", FOLDS, ids=_ids)
@pytest.mark.parametrize("form", FORMS)
def test_a_repeated_time_fires_once_at_its_first_occurrence(
    change: tuple[str, datetime, timedelta, timedelta], form: str
) -> None:
    name, instant, before, after = change
    zone = ZoneInfo(name)
    # the middle of the repeated wall times: e.g. 02:30 when 03:00 goes back to 02:00
    repeated = _wall(instant, after) + (before - after) / 2
    text = _schedule(form, repeated)
    trigger = parse_trigger(text, timezone=name, now=instant - timedelta(days=2))
    first = (repeated - before).replace(tzinfo=UTC)  # the occurrence before the change
    second = (repeated - after).replace(tzinfo=UTC)
    assert first < instant <= second
    fires = _fires_in(trigger, instant - timedelta(hours=12), instant + timedelta(hours=12))
    assert fires == [first], text  # once, and the first time
    assert fires[0].astimezone(zone).replace(tzinfo=None) == repeated
    # asked from between the two occurrences, the next fire is the next day's
    nxt = trigger.next_fire_time(first + timedelta(seconds=1))
    assert nxt is None or nxt > instant + timedelta(hours=12)


@pytest.mark.parametrize("change", CHANGES, ids=_ids)
def test_other_times_of_the_day_keep_their_wall_clock_time(
    change: tuple[str, datetime, timedelta, timedelta],
) -> None:
    name, instant, _, _ = change
    zone = ZoneInfo(name)
    trigger = parse_trigger("every day at 09:00", timezone=name)
    fires = _fires_in(trigger, instant - timedelta(days=2), instant + timedelta(days=2))
    assert len(fires) == 4
    assert {f.astimezone(zone).strftime("%H:%M") for f in fires} == {"09:00"}
