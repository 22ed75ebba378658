from __future__ import annotations

import datetime as dt
import json
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nbsched.errors import InvalidArgumentError, NbschedError, StateVersionError
from nbsched.triggers import IntervalTrigger, zones
from nbsched.triggers.registry import trigger_from_state

from ._fires import fires

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class TestFireTimes:
    def test_fires_at_start_plus_multiples(self) -> None:
        trigger = IntervalTrigger(10, start=T0)
        assert fires(trigger, T0 - timedelta(seconds=1), 3) == [
            T0,
            T0 + timedelta(seconds=10),
            T0 + timedelta(seconds=20),
        ]

    def test_anchor_sets_start_to_now_and_first_fire_is_now_plus_interval(self) -> None:
        trigger = IntervalTrigger(10).anchor(T0)
        assert trigger.start == T0
        assert trigger.next_fire_time(T0) == T0 + timedelta(seconds=10)
        assert trigger.next_fire_ts(T0.timestamp()) == T0.timestamp() + 10

    def test_anchor_keeps_an_explicit_start(self) -> None:
        trigger = IntervalTrigger(10, start=T0)
        assert trigger.anchor(T0 + timedelta(days=1)) is trigger

    def test_without_start_it_starts_when_made(self, system_now: datetime) -> None:
        trigger = IntervalTrigger(timedelta(minutes=5))
        assert trigger.start == system_now and trigger.provisional
        # the same grid whatever it is asked with, not a grid measured from ``after``
        assert trigger.next_fire_time(system_now) == system_now + timedelta(minutes=5)
        later = system_now + timedelta(minutes=5, seconds=3.2)
        assert trigger.next_fire_time(later) == system_now + timedelta(minutes=10)
        assert trigger.next_fire_ts(100.0) == system_now.timestamp()

    def test_anchor_moves_a_start_it_was_not_given(self, system_now: datetime) -> None:
        made = IntervalTrigger(7)
        anchored = made.anchor(system_now + timedelta(seconds=3.2))
        assert anchored.start == system_now + timedelta(seconds=3.2)
        assert not anchored.provisional
        assert anchored.anchor(system_now + timedelta(hours=1)) is anchored  # once

    def test_provisional_whatever_the_keywords_and_after_a_pickle(self) -> None:
        made = IntervalTrigger(interval=7)
        assert made.provisional and not IntervalTrigger(7, start=T0).provisional
        assert pickle.loads(pickle.dumps(made)).provisional
        assert not pickle.loads(pickle.dumps(made.anchor(T0))).provisional

    def test_a_subclass_made_without_a_start_keeps_its_class_and_is_provisional(self) -> None:
        class Every(IntervalTrigger):
            pass

        made = Every(7)
        assert type(made) is Every and made.provisional
        assert not Every(7, start=T0).provisional

    def test_late_query_does_not_shift_the_schedule(self) -> None:
        trigger = IntervalTrigger(60, start=T0)
        # asked 90.5 s late, the next time is still on the start + k * 60 grid
        assert trigger.next_fire_time(T0 + timedelta(seconds=90.5)) == T0 + timedelta(minutes=2)

    def test_exactly_on_a_fire_time_gives_the_next_one(self) -> None:
        trigger = IntervalTrigger(0.1, start=T0)
        fire = T0 + timedelta(seconds=0.3)
        assert trigger.next_fire_time(fire) == T0 + timedelta(seconds=0.4)
        ts = trigger.next_fire_ts(fire.timestamp())
        assert ts is not None and ts > fire.timestamp()
        assert ts == pytest.approx((T0 + timedelta(seconds=0.4)).timestamp(), abs=1e-6)

    def test_no_drift_after_a_million_fires(self) -> None:
        trigger = IntervalTrigger(0.1, start=T0)
        far = T0 + timedelta(seconds=100_000)
        assert trigger.next_fire_time(far) == far + timedelta(seconds=0.1)
        ts = trigger.next_fire_ts(far.timestamp())
        assert ts == pytest.approx(far.timestamp() + 0.1, abs=1e-6)

    def test_end_is_inclusive_and_then_exhausted(self) -> None:
        trigger = IntervalTrigger(10, start=T0, end=T0 + timedelta(seconds=20))
        assert fires(trigger, T0, 5) == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]
        assert trigger.next_fire_ts((T0 + timedelta(seconds=20)).timestamp()) is None

    def test_anchor_after_end_never_fires(self) -> None:
        trigger = IntervalTrigger(10, end=T0).anchor(T0 + timedelta(hours=1))
        assert trigger.next_fire_time(T0 + timedelta(hours=1)) is None

    def test_fire_times_are_utc(self) -> None:
        start = datetime(2026, 1, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
        nxt = IntervalTrigger(60, start=start).next_fire_time(start)
        assert nxt is not None and nxt.tzinfo is UTC
        assert nxt == start + timedelta(minutes=1)

    def test_naive_start_is_in_the_local_zone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(zones, "local_zone_name", lambda: "Asia/Kolkata")
        trigger = IntervalTrigger(60, start=datetime(2026, 1, 1, 5, 30))
        assert trigger.start == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)

    def test_iso_strings_for_start_and_end(self) -> None:
        trigger = IntervalTrigger(60, start="2026-06-01T12:00:00+00:00", end="2026-06-02T12:00Z")
        assert trigger == IntervalTrigger(60, start=T0, end=T0 + timedelta(days=1))

    def test_naive_after_is_refused(self) -> None:
        with pytest.raises(InvalidArgumentError, match="aware"):
            IntervalTrigger(10).next_fire_time(datetime(2026, 1, 1))


class TestDST:
    """An interval is elapsed time: DST changes neither its spacing nor its grid."""

    @pytest.mark.parametrize(
        ("zone", "day"),
        [
            ("Europe/Berlin", dt.date(2026, 3, 29)),
            ("Europe/Berlin", dt.date(2026, 10, 25)),
            ("America/New_York", dt.date(2026, 3, 8)),
            ("America/New_York", dt.date(2026, 11, 1)),
        ],
    )
    def test_one_hour_stays_3600_seconds_apart(self, zone: str, day: dt.date) -> None:
        tz = ZoneInfo(zone)
        start = datetime.combine(day - timedelta(days=1), dt.time(22), tzinfo=tz)
        trigger = IntervalTrigger(3600).anchor(start)
        times = fires(trigger, start, 8)
        assert [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)] == [
            3600.0
        ] * 7
        assert [t.timestamp() for t in times] == [start.timestamp() + 3600 * k for k in range(1, 9)]
        ts = [trigger.next_fire_ts(t.timestamp() - 1) for t in times]
        assert ts == [t.timestamp() for t in times]

    def test_one_day_keeps_elapsed_time_not_wall_clock(self) -> None:
        tz = ZoneInfo("Europe/Berlin")
        start = datetime(2026, 3, 28, 9, 0, tzinfo=tz)
        nxt = IntervalTrigger(timedelta(days=1), start=start).next_fire_time(start)
        assert nxt is not None
        assert nxt.astimezone(tz).hour == 10  # 24 h after 09:00 CET is 10:00 CEST
        assert (nxt - start) == timedelta(hours=24)


class TestValues:
    def test_equal_values_compare_equal(self, system_now: datetime) -> None:
        assert IntervalTrigger(90) == IntervalTrigger(timedelta(minutes=1.5))
        assert hash(IntervalTrigger(90)) == hash(IntervalTrigger(90.0))
        assert IntervalTrigger(90) != IntervalTrigger(91)
        assert IntervalTrigger(90, start=T0 + timedelta(1)) != IntervalTrigger(90)
        # equal values have equal fire times: made now, or started now, is the same schedule
        assert IntervalTrigger(90, start=system_now) == IntervalTrigger(90)

    def test_repr_evaluates_to_an_equal_trigger(self) -> None:
        for trigger in (
            IntervalTrigger(10),
            IntervalTrigger(0.25, start=T0, end=T0 + timedelta(1)),
        ):
            assert eval(repr(trigger), {"IntervalTrigger": IntervalTrigger}) == trigger
        assert repr(IntervalTrigger(10, start=T0)) == (
            "IntervalTrigger(10.0, start='2026-06-01T12:00:00+00:00')"
        )

    @pytest.mark.parametrize(
        ("interval", "words"),
        [
            (10, "Every 10 seconds"),
            (1, "Every second"),
            (60, "Every minute"),
            (3600, "Every hour"),
            (5400, "Every 1 hour and 30 minutes"),
            (0.5, "Every 0.5 seconds"),
            (86400, "Every 1 day"),
            (2 * 86400 + 3 * 3600 + 60, "Every 2 days, 3 hours and 1 minute"),
            (timedelta(minutes=2, seconds=1.5), "Every 2 minutes and 1.5 seconds"),
        ],
    )
    def test_describe(self, interval: float | timedelta, words: str) -> None:
        assert IntervalTrigger(interval).describe() == words

    def test_describe_with_end(self) -> None:
        trigger = IntervalTrigger(300, end=datetime(2026, 12, 1, 9, tzinfo=UTC))
        assert trigger.describe() == "Every 5 minutes, until 2026-12-01 09:00 UTC"

    def test_timezone_is_none(self) -> None:
        assert IntervalTrigger(1).timezone is None


class TestErrors:
    @pytest.mark.parametrize("bad", [0, -1, timedelta(0), timedelta(seconds=-5), 1e-9])
    def test_non_positive_interval(self, bad: float | timedelta) -> None:
        with pytest.raises(InvalidArgumentError, match="interval must be longer than zero") as e:
            IntervalTrigger(bad)
        assert isinstance(e.value, NbschedError) and isinstance(e.value, ValueError)

    @pytest.mark.parametrize("bad", ["10s", True, None, float("nan"), float("inf")])
    def test_wrong_type(self, bad: object) -> None:
        with pytest.raises(InvalidArgumentError, match="interval must be"):
            IntervalTrigger(bad)  # type: ignore[arg-type]

    def test_end_before_start(self) -> None:
        with pytest.raises(InvalidArgumentError, match=r"end \(.*\) is before start"):
            IntervalTrigger(1, start=T0, end=T0 - timedelta(seconds=1))


class TestState:
    def test_round_trip(self) -> None:
        trigger = IntervalTrigger(0.1, start=T0, end=T0 + timedelta(days=3))
        state = trigger.to_state()
        assert state == {
            "version": 1,
            "type": "interval",
            "interval": 0.1,
            "start": "2026-06-01T12:00:00+00:00",
            "end": "2026-06-04T12:00:00+00:00",
        }
        assert IntervalTrigger.from_state(state) == trigger
        assert trigger_from_state(state) == trigger

    def test_a_provisional_start_is_kept_across_the_round_trip(self, system_now: datetime) -> None:
        trigger = IntervalTrigger(7)
        state = trigger.to_state()
        assert state["start"] == system_now.isoformat() and state["provisional"] is True
        restored = trigger_from_state(json.loads(json.dumps(state)))
        assert isinstance(restored, IntervalTrigger)
        assert restored == trigger and restored.provisional and restored.to_state() == state
        later = system_now + timedelta(seconds=3.2)
        assert restored.next_fire_time(later) == system_now + timedelta(seconds=7)
        job_start = system_now + timedelta(hours=1)
        assert restored.anchor(job_start).start == job_start

    def test_newer_version_is_refused(self) -> None:
        state = {**IntervalTrigger(10).to_state(), "version": 2}
        with pytest.raises(StateVersionError, match="version 2.*newer nbsched"):
            trigger_from_state(state)

    def test_malformed_state(self) -> None:
        with pytest.raises(StateVersionError, match="Cannot restore interval trigger"):
            IntervalTrigger.from_state({"version": 1, "type": "interval"})
        with pytest.raises(StateVersionError, match="Cannot restore interval trigger"):
            IntervalTrigger.from_state({"version": 1, "type": "interval", "interval": -1})

    def test_wrong_type(self) -> None:
        with pytest.raises(StateVersionError, match="type 'cron'"):
            IntervalTrigger.from_state({"version": 1, "type": "cron"})

    @given(
        interval=st.floats(min_value=1e-7, max_value=1e8),
        start=st.none() | st.datetimes(timezones=st.timezones()),
        span=st.none() | st.floats(min_value=0, max_value=1e8),
    )
    @settings(max_examples=300, deadline=None)
    def test_stored_state_reads_back_as_the_constructor_builds_it(
        self, interval: float, start: datetime | None, span: float | None
    ) -> None:
        # from_state reads what to_state wrote straight into floats (a restart reads 10k of
        # them); it must build exactly the trigger the constructor builds from that state.
        assume(not (start is None and span is not None))
        if timedelta(seconds=interval) == timedelta(0):  # rounds to zero µs: refused
            with pytest.raises(StateVersionError, match="longer than zero"):
                IntervalTrigger.from_state(
                    {"version": 1, "type": "interval", "interval": interval, "start": None}
                )
            return
        # (in UTC: ``zoned + timedelta`` is wall-clock arithmetic, which in a repeated hour
        # can land before ``start``)
        end = None if start is None or span is None else start.astimezone(UTC) + timedelta(seconds=span)
        state = IntervalTrigger(interval, start=start, end=end).to_state()
        read = IntervalTrigger.from_state(state)
        built = IntervalTrigger(state["interval"], start=state["start"], end=state["end"])
        assert read == built and read.to_state() == state
        after = (start or T0).timestamp() + interval * 2.5
        assert read.next_fire_ts(after) == built.next_fire_ts(after)

    @pytest.mark.parametrize(
        ("state", "expected"),
        [
            # not what to_state writes, but readable: the constructor's rules apply
            ({"interval": 10}, "now"),
            ({"interval": 1.5, "start": "2026-03-01 12:00"}, "naive"),
            (
                {"interval": 60.0, "start": "2026-03-01T12:00:00+01:00"},
                IntervalTrigger(60, start=datetime(2026, 3, 1, 11, tzinfo=UTC)),
            ),
        ],
    )
    def test_other_states_go_through_the_constructor(
        self,
        state: dict[str, object],
        expected: object,
        monkeypatch: pytest.MonkeyPatch,
        system_now: datetime,
    ) -> None:
        monkeypatch.setattr(zones, "local_zone_name", lambda: "Europe/Berlin")
        if expected == "naive":  # a wall time in the machine's zone, as the constructor reads it
            expected = IntervalTrigger(1.5, start=datetime(2026, 3, 1, 11, tzinfo=UTC))
        if expected == "now":  # no start: it starts when read, as the constructor's does
            expected = IntervalTrigger(10, start=system_now)
        read = IntervalTrigger.from_state({"version": 1, "type": "interval", **state})
        assert read == expected

    def test_a_stored_end_before_start_is_refused(self) -> None:
        state = {
            "version": 1, "type": "interval", "interval": 5.0,
            "start": "2026-03-01T12:00:00+00:00", "end": "2026-03-01T11:00:00+00:00",
        }
        with pytest.raises(StateVersionError, match="is before start"):
            IntervalTrigger.from_state(state)
