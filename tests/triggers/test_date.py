from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nbsched.errors import InvalidArgumentError, StateVersionError, TriggerParseError
from nbsched.triggers import DateTrigger, zones
from nbsched.triggers.registry import trigger_from_state

PARIS = ZoneInfo("Europe/Paris")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


class TestRunDate:
    def test_fires_once(self) -> None:
        run = datetime(2026, 12, 1, 9, tzinfo=PARIS)
        trigger = DateTrigger(run, timezone="Europe/Paris")
        assert trigger.next_fire_time(run - timedelta(days=30)) == run
        assert trigger.next_fire_time(run - timedelta(microseconds=1)) == run
        assert trigger.next_fire_time(run) is None
        assert trigger.next_fire_ts(run.timestamp()) is None
        assert trigger.next_fire_ts(run.timestamp() - 1) == run.timestamp()

    def test_naive_run_date_is_in_the_trigger_zone(self) -> None:
        trigger = DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris")
        assert trigger.run_date == datetime(2026, 12, 1, 8, tzinfo=UTC)
        nxt = trigger.next_fire_time(datetime(2026, 1, 1, tzinfo=UTC))
        assert nxt is not None and nxt.hour == 9  # reads as Paris time

    def test_aware_run_date_keeps_its_instant(self) -> None:
        trigger = DateTrigger(datetime(2026, 12, 1, 9, tzinfo=NEW_YORK), timezone="Europe/Paris")
        assert trigger.run_date == datetime(2026, 12, 1, 14, tzinfo=UTC)
        assert trigger.describe() == "Once, at 2026-12-01 15:00 (Europe/Paris)"

    def test_iso_string(self) -> None:
        assert DateTrigger("2026-12-01T09:00+01:00", timezone="UTC") == DateTrigger(
            datetime(2026, 12, 1, 8, tzinfo=UTC), timezone="UTC"
        )

    def test_nonexistent_local_time_means_the_first_valid_instant_after(self) -> None:
        trigger = DateTrigger(datetime(2026, 3, 29, 2, 30), timezone=BERLIN)
        assert trigger.run_date == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST

    def test_repeated_local_time_means_the_first_occurrence(self) -> None:
        trigger = DateTrigger(datetime(2026, 11, 1, 1, 30), timezone=NEW_YORK)
        assert trigger.run_date == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT

    def test_local_zone_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(zones, "local_zone_name", lambda: "Asia/Kolkata")
        trigger = DateTrigger(datetime(2026, 12, 1, 9))
        assert trigger.run_date == datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
        assert trigger.describe() == "Once, at 2026-12-01 09:00 (Asia/Kolkata)"

    def test_anchor_does_not_change_a_dated_trigger(self) -> None:
        trigger = DateTrigger("2026-12-01T09:00Z", timezone="UTC")
        assert trigger.anchor(datetime(2026, 1, 1, tzinfo=UTC)) is trigger


class TestDelay:
    def test_after_is_a_delay_that_anchor_counts_from_the_job_start(
        self, system_now: datetime
    ) -> None:
        trigger = DateTrigger.after(600, timezone="UTC")
        assert trigger == DateTrigger(delay=timedelta(minutes=10), timezone="UTC")
        now = system_now + timedelta(hours=1)
        anchored = trigger.anchor(now)
        assert anchored == DateTrigger(now + timedelta(minutes=10), timezone="UTC")
        assert trigger.provisional and not anchored.provisional and anchored.delay is None
        assert anchored.anchor(now + timedelta(days=1)) is anchored
        assert anchored.next_fire_time(now) == now + timedelta(minutes=10)
        assert anchored.next_fire_time(now + timedelta(minutes=10)) is None

    def test_a_delay_fires_once_counted_from_when_it_was_made(self, system_now: datetime) -> None:
        trigger = DateTrigger.after(timedelta(seconds=30), timezone="UTC")
        fire = system_now + timedelta(seconds=30)
        assert trigger.run_date == fire and trigger.delay == timedelta(seconds=30)
        for after in (system_now - timedelta(days=1), system_now, fire - timedelta(seconds=1)):
            assert trigger.next_fire_time(after) == fire
        # once: asked after its one fire time, it is over (not again 30 s later)
        assert trigger.next_fire_time(fire) is None
        assert trigger.next_fire_ts(fire.timestamp() + 3.2) is None

    def test_anchor_adds_elapsed_time_across_dst(self) -> None:
        # 00:50 UTC on the fall-back day is 02:50 CEST; one hour later is 02:50 CET
        now = datetime(2026, 10, 25, 0, 50, tzinfo=UTC).astimezone(BERLIN)
        anchored = DateTrigger.after(3600, timezone=BERLIN).anchor(now)
        assert anchored.run_date == datetime(2026, 10, 25, 1, 50, tzinfo=UTC)

    def test_describe_says_when(self, system_now: datetime) -> None:
        in_ten = DateTrigger.after(600, timezone="UTC")
        assert in_ten.describe() == "Once, at 2026-06-01 12:10 (UTC)"
        assert (
            DateTrigger.after(5400, timezone="Europe/Paris").describe()
            == "Once, at 2026-06-01 15:30 (Europe/Paris)"
        )


class TestValues:
    def test_describe_shows_seconds_only_when_set(self) -> None:
        trigger = DateTrigger(datetime(2026, 12, 1, 9, 0, 30), timezone="Europe/Paris")
        assert trigger.describe() == "Once, at 2026-12-01 09:00:30 (Europe/Paris)"
        trigger = DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris")
        assert trigger.describe() == "Once, at 2026-12-01 09:00 (Europe/Paris)"

    def test_repr_evaluates_to_an_equal_trigger(self) -> None:
        for trigger in (
            DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris"),
            DateTrigger.after(1.5, timezone="UTC"),
        ):
            assert eval(repr(trigger), {"DateTrigger": DateTrigger}) == trigger
        assert repr(DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris")) == (
            "DateTrigger('2026-12-01T09:00:00+01:00', timezone='Europe/Paris')"
        )

    def test_equality(self) -> None:
        a = DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris")
        assert a == DateTrigger("2026-12-01T08:00:00Z", timezone="Europe/Paris")
        assert hash(a) == hash(DateTrigger("2026-12-01T08:00:00Z", timezone="Europe/Paris"))
        assert a != DateTrigger("2026-12-01T08:00:00Z", timezone="UTC")  # shown differently

    def test_timezone(self) -> None:
        assert DateTrigger.after(1, timezone="Europe/Paris").timezone == PARIS


class TestErrors:
    def test_needs_exactly_one_of_run_date_and_delay(self) -> None:
        with pytest.raises(InvalidArgumentError, match="exactly one of run_date"):
            DateTrigger(timezone="UTC")
        with pytest.raises(InvalidArgumentError, match="exactly one of run_date"):
            DateTrigger(datetime(2026, 1, 1), delay=5, timezone="UTC")

    @pytest.mark.parametrize("delay", [0, -1, timedelta(0)])
    def test_delay_must_be_positive(self, delay: float | timedelta) -> None:
        with pytest.raises(InvalidArgumentError, match="delay must be longer than zero"):
            DateTrigger.after(delay)

    def test_bad_iso_string(self) -> None:
        with pytest.raises(TriggerParseError, match="Bad run_date 'tomorrow'"):
            DateTrigger("tomorrow", timezone="UTC")

    def test_wrong_type(self) -> None:
        with pytest.raises(InvalidArgumentError, match="run_date must be a datetime"):
            DateTrigger(12345, timezone="UTC")  # type: ignore[arg-type]


class TestState:
    @pytest.mark.parametrize(
        "trigger",
        [
            DateTrigger(datetime(2026, 12, 1, 9, 0, 0, 123456), timezone="Europe/Paris"),
            DateTrigger.after(600, timezone="America/New_York"),
        ],
    )
    def test_round_trip(self, trigger: DateTrigger) -> None:
        restored = trigger_from_state(trigger.to_state())
        assert restored == trigger
        after = datetime(2026, 1, 1, tzinfo=UTC)
        assert restored.next_fire_time(after) == trigger.next_fire_time(after)

    def test_a_pending_delay_is_kept_across_the_round_trip(self, system_now: datetime) -> None:
        trigger = DateTrigger.after(600, timezone="UTC")
        state = trigger.to_state()
        assert state["run_date"] == "2026-06-01T12:10:00+00:00" and state["delay"] == 600
        restored = trigger_from_state(state)
        assert isinstance(restored, DateTrigger)
        assert restored == trigger and restored.to_state() == state
        job_start = system_now + timedelta(hours=1)
        assert restored.anchor(job_start).run_date == job_start + timedelta(minutes=10)

    def test_state(self) -> None:
        state = DateTrigger(datetime(2026, 12, 1, 9), timezone="Europe/Paris").to_state()
        assert state == {
            "version": 1,
            "type": "date",
            "run_date": "2026-12-01T09:00:00+01:00",
            "delay": None,
            "timezone": "Europe/Paris",
        }

    def test_newer_version_is_refused(self) -> None:
        state = {**DateTrigger.after(1, timezone="UTC").to_state(), "version": 2}
        with pytest.raises(StateVersionError, match="newer nbsched"):
            trigger_from_state(state)
