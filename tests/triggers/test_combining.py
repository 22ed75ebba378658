from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nbsched.errors import InvalidArgumentError
from nbsched.triggers import CronTrigger, DateTrigger, IntervalTrigger, OrTrigger
from nbsched.triggers.registry import trigger_from_state

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_union_without_duplicates() -> None:
    trigger = OrTrigger(
        CronTrigger("0 * * * *", timezone="UTC"),
        CronTrigger("*/30 * * * *", timezone="UTC"),  # shares every full hour
    )
    after, got = T0, []
    for _ in range(4):
        nxt = trigger.next_fire_time(after)
        assert nxt is not None
        got.append(nxt)
        after = nxt
    assert got == [T0 + timedelta(minutes=m) for m in (30, 60, 90, 120)]


def test_exhausted_when_every_child_is() -> None:
    trigger = OrTrigger(
        DateTrigger(T0, timezone="UTC"), DateTrigger(T0 + timedelta(1), timezone="UTC")
    )
    assert trigger.next_fire_time(T0 - timedelta(1)) == T0
    assert trigger.next_fire_time(T0) == T0 + timedelta(1)
    assert trigger.next_fire_time(T0 + timedelta(1)) is None


def test_anchor_anchors_every_child() -> None:
    trigger = OrTrigger(IntervalTrigger(60), DateTrigger.after(90, timezone="UTC")).anchor(T0)
    assert trigger == OrTrigger(
        IntervalTrigger(60, start=T0), DateTrigger(T0 + timedelta(seconds=90), timezone="UTC")
    )
    assert trigger.next_fire_ts(T0.timestamp() + 60) == T0.timestamp() + 90


def test_words_state_and_repr() -> None:
    trigger = OrTrigger(
        CronTrigger("30 9 * * 1-5", timezone="Europe/Paris"),
        CronTrigger("0 10 * * 6", timezone="Europe/Paris"),
    )
    assert trigger.describe() == "At 09:30, Monday through Friday; or at 10:00, only on Saturday"
    assert trigger_from_state(trigger.to_state()) == trigger
    assert eval(repr(trigger), {"OrTrigger": OrTrigger, "CronTrigger": CronTrigger}) == trigger
    assert str(trigger.timezone) == "Europe/Paris"
    assert OrTrigger(IntervalTrigger(1), trigger).timezone == trigger.timezone
    mixed = OrTrigger(CronTrigger("0 9 * * *", timezone="UTC"), trigger)
    assert mixed.timezone is None


def test_needs_triggers() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one trigger"):
        OrTrigger()
    with pytest.raises(InvalidArgumentError, match="takes triggers, got str"):
        OrTrigger("every 10s")  # type: ignore[arg-type]
