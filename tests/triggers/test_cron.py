from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from nbsched.errors import InvalidArgumentError, StateVersionError, TriggerParseError
from nbsched.triggers import CronTrigger, zones
from nbsched.triggers.registry import trigger_from_state

from ._fires import fires

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires_until(trigger: CronTrigger, after: datetime, until: datetime) -> list[datetime]:
    out: list[datetime] = []
    while (nxt := trigger.next_fire_time(after)) is not None and nxt <= until:
        out.append(nxt)
        after = nxt
    return out


class TestSyntax:
    def test_five_fields(self) -> None:
        trigger = CronTrigger("*/15 9-10 * * *", timezone="UTC")
        assert fires(trigger, utc(2026, 1, 1), 5) == [
            utc(2026, 1, 1, 9, 0),
            utc(2026, 1, 1, 9, 15),
            utc(2026, 1, 1, 9, 30),
            utc(2026, 1, 1, 9, 45),
            utc(2026, 1, 1, 10, 0),
        ]

    def test_seconds_field_first(self) -> None:
        trigger = CronTrigger("*/20 * * * * *", timezone="UTC")
        assert fires(trigger, utc(2026, 1, 1), 3) == [
            utc(2026, 1, 1, 0, 0, 20),
            utc(2026, 1, 1, 0, 0, 40),
            utc(2026, 1, 1, 0, 1, 0),
        ]

    def test_names_and_lists(self) -> None:
        trigger = CronTrigger("0 9 * jan,MAR mon-fri", timezone="UTC")
        first = trigger.next_fire_time(utc(2026, 1, 31))  # a Saturday, then February
        assert first == utc(2026, 3, 2, 9)  # Monday 2 March

    @pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
    def test_sunday_is_0_and_7(self, sunday: str) -> None:
        trigger = CronTrigger(f"0 12 * * {sunday}", timezone="UTC")
        assert trigger.next_fire_time(utc(2026, 6, 1)) == utc(2026, 6, 7, 12)  # a Sunday

    def test_weekday_range_through_sunday(self) -> None:
        trigger = CronTrigger("0 0 * * fri-sun", timezone="UTC")
        assert [d.strftime("%a") for d in fires(trigger, utc(2026, 6, 1), 4)] == [
            "Fri",
            "Sat",
            "Sun",
            "Fri",
        ]

    @pytest.mark.parametrize(
        ("alias", "first"),
        [
            ("@yearly", utc(2027, 1, 1)),
            ("@annually", utc(2027, 1, 1)),
            ("@monthly", utc(2026, 7, 1)),
            ("@weekly", utc(2026, 6, 14)),
            ("@daily", utc(2026, 6, 11)),
            ("@midnight", utc(2026, 6, 11)),
            ("@hourly", utc(2026, 6, 10, 13)),
        ],
    )
    def test_aliases(self, alias: str, first: datetime) -> None:
        assert CronTrigger(alias, timezone="UTC").next_fire_time(utc(2026, 6, 10, 12, 30)) == first

    def test_day_of_month_or_day_of_week_when_both_restricted(self) -> None:
        trigger = CronTrigger("0 0 13 * fri", timezone="UTC")
        days = [d.date() for d in fires(trigger, utc(2026, 2, 1), 4)]
        # Friday 6 Feb, Friday 13 Feb (both), Friday 20 Feb, Friday 27 Feb... and Fri 13 Mar
        assert days == [dt.date(2026, 2, 6), dt.date(2026, 2, 13), dt.date(2026, 2, 20),
                        dt.date(2026, 2, 27)]  # fmt: skip
        days = [d.date() for d in fires(CronTrigger("0 0 1 * 3", timezone="UTC"),
                                        utc(2026, 3, 30), 2)]  # fmt: skip
        assert days == [dt.date(2026, 4, 1), dt.date(2026, 4, 8)]  # the 1st and a Wednesday

    def test_day_and_weekday_and_when_one_is_star(self) -> None:
        # 13th, any weekday: only the 13th
        days = [d.date() for d in fires(CronTrigger("0 0 13 * *", timezone="UTC"),
                                        utc(2026, 2, 1), 2)]  # fmt: skip
        assert days == [dt.date(2026, 2, 13), dt.date(2026, 3, 13)]

    def test_leap_day(self) -> None:
        trigger = CronTrigger("0 0 29 2 *", timezone="UTC")
        assert trigger.next_fire_time(utc(2026, 1, 1)) == utc(2028, 2, 29)

    def test_start_and_end_are_inclusive(self) -> None:
        trigger = CronTrigger(
            "0 * * * *", timezone="UTC", start=utc(2026, 1, 1, 3), end=utc(2026, 1, 1, 5)
        )
        assert fires(trigger, utc(2025, 12, 1), 10) == [
            utc(2026, 1, 1, 3),
            utc(2026, 1, 1, 4),
            utc(2026, 1, 1, 5),
        ]

    def test_naive_start_is_in_the_trigger_zone(self) -> None:
        trigger = CronTrigger("0 * * * *", timezone="Europe/Berlin", start=datetime(2026, 1, 1, 3))
        assert trigger.next_fire_time(utc(2025, 1, 1)) == utc(2026, 1, 1, 2)

    def test_fire_times_are_in_the_trigger_zone(self) -> None:
        nxt = CronTrigger("0 9 * * *", timezone="Europe/Berlin").next_fire_time(utc(2026, 1, 1))
        assert nxt is not None and nxt.hour == 9 and nxt.utcoffset() == timedelta(hours=1)

    def test_fire_times_in_the_fold_compare_and_subtract_exactly(self) -> None:
        trigger = CronTrigger("30 * * * *", timezone=BERLIN)
        first = trigger.next_fire_time(utc(2026, 10, 25, 0))
        second = trigger.next_fire_time(utc(2026, 10, 25, 1))
        assert first is not None and second is not None
        assert (first.hour, first.minute) == (second.hour, second.minute) == (2, 30)
        assert first < second and second - first == timedelta(hours=1)

    def test_next_fire_ts_matches_next_fire_time(self) -> None:
        trigger = CronTrigger("30 9 * * mon-fri", timezone="Europe/Berlin")
        after = utc(2026, 3, 27, 12)
        nxt = trigger.next_fire_time(after)
        assert nxt is not None
        assert trigger.next_fire_ts(after.timestamp()) == nxt.timestamp()

    def test_strictly_after(self) -> None:
        trigger = CronTrigger("0 9 * * *", timezone="UTC")
        assert trigger.next_fire_time(utc(2026, 1, 1, 9)) == utc(2026, 1, 2, 9)
        assert trigger.next_fire_time(utc(2026, 1, 1, 8, 59, 59, 999999)) == utc(2026, 1, 1, 9)


class TestDST:
    """The contract of DESIGN.md section 5, on both 2026 transition days of two zones."""

    @pytest.mark.parametrize(
        ("tz", "day", "first_valid_utc"),
        [
            (BERLIN, dt.date(2026, 3, 29), utc(2026, 3, 29, 1, 0)),  # 03:00 CEST
            (NEW_YORK, dt.date(2026, 3, 8), utc(2026, 3, 8, 7, 0)),  # 03:00 EDT
        ],
    )
    @pytest.mark.parametrize("expr", ["30 2 * * *", "0 30 2 * * *", "0,30 2 * * *"])
    def test_gap_fires_once_at_the_first_valid_instant(
        self, tz: ZoneInfo, day: dt.date, first_valid_utc: datetime, expr: str
    ) -> None:
        trigger = CronTrigger(expr, timezone=tz)
        start = datetime.combine(day - timedelta(days=1), dt.time(12), tzinfo=tz)
        got = fires_until(trigger, start, start + timedelta(days=1))
        assert got == [first_valid_utc]
        assert got[0].astimezone(tz).time() == dt.time(3, 0)

    @pytest.mark.parametrize(
        ("tz", "expr", "day", "first_occurrence_utc"),
        [
            (BERLIN, "30 2 * * *", dt.date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),  # CEST
            (NEW_YORK, "30 1 * * *", dt.date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),  # EDT
        ],
    )
    def test_fold_fires_once_at_the_first_occurrence(
        self, tz: ZoneInfo, expr: str, day: dt.date, first_occurrence_utc: datetime
    ) -> None:
        trigger = CronTrigger(expr, timezone=tz)
        start = datetime.combine(day - timedelta(days=1), dt.time(12), tzinfo=tz)
        assert fires_until(trigger, start, start + timedelta(days=1)) == [first_occurrence_utc]
        seconds = CronTrigger("0 " + expr, timezone=tz)
        assert fires_until(seconds, start, start + timedelta(days=1)) == [first_occurrence_utc]

    @pytest.mark.parametrize(
        ("tz", "expr", "second_pass"),
        [
            (BERLIN, "30 2 * * *", datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN, fold=1)),
            (NEW_YORK, "30 1 * * *", datetime(2026, 11, 1, 1, 15, tzinfo=NEW_YORK, fold=1)),
        ],
    )
    def test_asked_from_the_second_pass_of_the_fold(
        self, tz: ZoneInfo, expr: str, second_pass: datetime
    ) -> None:
        # cronsim alone answers 02:30 of the *first* pass here, a time before `after`
        nxt = CronTrigger(expr, timezone=tz).next_fire_time(second_pass)
        assert nxt is not None and nxt.timestamp() > second_pass.timestamp()
        assert nxt.date() == second_pass.date() + timedelta(days=1)

    def test_asked_from_the_second_pass_the_hour_after_still_fires(self) -> None:
        # 01:00 EST (second pass) on 2026-11-01: 02:00 EST is an hour later, that same day
        after = datetime(2026, 11, 1, 1, 0, tzinfo=NEW_YORK, fold=1)
        nxt = CronTrigger("0 2 * * *", timezone=NEW_YORK).next_fire_time(after)
        assert nxt == utc(2026, 11, 1, 7, 0)

    @pytest.mark.parametrize(
        ("tz", "day"),
        [
            (BERLIN, dt.date(2026, 3, 29)),
            (BERLIN, dt.date(2026, 10, 25)),
            (NEW_YORK, dt.date(2026, 3, 8)),
            (NEW_YORK, dt.date(2026, 11, 1)),
        ],
    )
    def test_nine_oclock_stays_nine_oclock(self, tz: ZoneInfo, day: dt.date) -> None:
        trigger = CronTrigger("0 9 * * *", timezone=tz)
        start = datetime.combine(day - timedelta(days=2), dt.time(12), tzinfo=tz)
        got = fires(trigger, start, 4)
        assert [t.astimezone(tz).time() for t in got] == [dt.time(9)] * 4
        assert [t.astimezone(tz).date() for t in got] == [day + timedelta(d) for d in (-1, 0, 1, 2)]
        gaps = {(b - a) for a, b in zip(got, got[1:], strict=False)}
        assert len(gaps) == 2  # one day is 23 h or 25 h long

    def test_hourly_fires_in_both_passes_of_the_fold(self) -> None:
        trigger = CronTrigger("30 * * * *", timezone=BERLIN)
        got = fires_until(trigger, utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
        assert got == [utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30),
                       utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30)]  # fmt: skip
        assert [t.astimezone(BERLIN).strftime("%H:%M%z") for t in got] == [
            "01:30+0200", "02:30+0200", "02:30+0100", "03:30+0100"
        ]  # fmt: skip

    def test_hourly_skips_the_missing_hour(self) -> None:
        trigger = CronTrigger("30 * * * *", timezone=NEW_YORK)
        got = fires_until(trigger, utc(2026, 3, 8, 5), utc(2026, 3, 8, 9))
        # 00:30 EST, 01:30 EST, (02:30 does not exist), 03:30 EDT, 04:30 EDT: one hour apart
        assert got == [utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6, 30),
                       utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8, 30)]  # fmt: skip

    @pytest.mark.parametrize(
        ("tz", "around"),
        [
            (BERLIN, utc(2026, 3, 29, 1)),
            (BERLIN, utc(2026, 10, 25, 1)),
            (NEW_YORK, utc(2026, 3, 8, 7)),
            (NEW_YORK, utc(2026, 11, 1, 6)),
        ],
    )
    def test_every_15_minutes_keeps_15_minutes_of_real_time(
        self, tz: ZoneInfo, around: datetime
    ) -> None:
        trigger = CronTrigger("*/15 * * * *", timezone=tz)
        got = fires_until(trigger, around - timedelta(hours=2), around + timedelta(hours=2))
        assert len(got) == 16
        assert {b - a for a, b in zip(got, got[1:], strict=False)} == {timedelta(minutes=15)}

    def test_other_zones_and_half_hour_shift(self) -> None:
        # Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04
        tz = ZoneInfo("Australia/Lord_Howe")
        trigger = CronTrigger("15 2 * * *", timezone=tz)
        nxt = trigger.next_fire_time(datetime(2026, 10, 3, 12, tzinfo=tz))
        assert nxt is not None
        assert nxt.astimezone(tz).replace(tzinfo=None) == datetime(2026, 10, 4, 2, 30)


class TestValues:
    def test_equal_when_the_canonical_form_is_equal(self) -> None:
        assert CronTrigger("0 9 * * MON", timezone="UTC") == CronTrigger(
            "0 9 * * 1", timezone="UTC"
        )
        assert CronTrigger("@daily", timezone="UTC") == CronTrigger("0  0 * * *", timezone="UTC")
        assert hash(CronTrigger("@daily", timezone="UTC")) == hash(
            CronTrigger("0 0 * * *", timezone="UTC")
        )
        assert CronTrigger("0 9 * * *", timezone="UTC") != CronTrigger(
            "0 9 * * *", timezone="Europe/Paris"
        )

    def test_repr_evaluates_to_an_equal_trigger(self) -> None:
        trigger = CronTrigger("30 9 * * mon-fri", timezone="Europe/Paris", end="2027-01-01")
        assert repr(trigger) == (
            "CronTrigger('30 9 * * mon-fri', timezone='Europe/Paris', "
            "end='2027-01-01T00:00:00+01:00')"
        )
        assert eval(repr(trigger), {"CronTrigger": CronTrigger}) == trigger

    @pytest.mark.parametrize(
        ("expr", "words"),
        [
            ("30 9 * * 1-5", "At 09:30, Monday through Friday"),
            ("30 9 * * mon-fri", "At 09:30, Monday through Friday"),
            ("0 0 * * 7", "At 00:00, only on Sunday"),
            ("0 18 * * 5-7", "At 18:00, Friday through Sunday"),
            ("*/5 * * * *", "Every 5 minutes"),
            ("15 30 9 * * *", "At 09:30:15"),
            ("*/10 * * * * *", "Every 10 seconds"),
            ("@daily", "At 00:00"),
            ("@hourly", "Every hour"),
            ("0 14 * * *", "At 14:00"),
        ],
    )
    def test_describe(self, expr: str, words: str) -> None:
        assert CronTrigger(expr, timezone="Europe/Paris").describe() == words

    def test_describe_with_start_and_end(self) -> None:
        trigger = CronTrigger("0 9 * * *", timezone="UTC", start="2026-01-01", end="2026-02-01")
        assert trigger.describe() == "At 09:00, from 2026-01-01 00:00, until 2026-02-01 00:00"


class TestZones:
    def test_none_means_the_local_zone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(zones, "local_zone_name", lambda: "America/New_York")
        assert CronTrigger("0 9 * * *").timezone == NEW_YORK

    def test_local_zone_falls_back_to_utc(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import tzlocal

        def broken() -> str:
            raise LookupError("no zone configured")

        monkeypatch.setattr(tzlocal, "get_localzone_name", broken)
        assert zones.local_zone_name() == "UTC"

    @pytest.mark.parametrize(
        "tz", ["UTC", "Etc/UTC", "utc", UTC, timezone(timedelta(0)), ZoneInfo("Etc/UTC")]
    )
    def test_spellings_of_utc(self, tz: str | dt.tzinfo) -> None:
        trigger = CronTrigger("0 9 * * *", timezone=tz)
        assert trigger.to_state()["timezone"] == "UTC"
        assert trigger == CronTrigger("0 9 * * *", timezone="UTC")

    def test_zone_names_are_case_insensitive(self) -> None:
        assert CronTrigger("0 9 * * *", timezone="europe/paris").timezone == ZoneInfo(
            "Europe/Paris"
        )

    def test_unknown_zone(self) -> None:
        with pytest.raises(TriggerParseError) as err:
            CronTrigger("0 9 * * *", timezone="Europe/Pariss")
        assert str(err.value) == "Unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?)"
        assert isinstance(err.value, ValueError)

    def test_unknown_zone_without_a_close_match(self) -> None:
        with pytest.raises(TriggerParseError, match="Unknown time zone 'Nowhere'.*IANA name"):
            CronTrigger("0 9 * * *", timezone="Nowhere")

    def test_fixed_offset_is_refused(self) -> None:
        with pytest.raises(TriggerParseError, match="has no IANA name"):
            CronTrigger("0 9 * * *", timezone=timezone(timedelta(hours=2)))


class TestErrors:
    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("61 * * * *", "Bad cron expression '61 * * * *': minute field '61' is out of range 0-59"),
            ("* * *", "Bad cron expression '* * *': expected 5 fields (minute hour day month "
                      "weekday) or 6 with seconds first, got 3"),
            ("0 24 * * *", "Bad cron expression '0 24 * * *': hour field '24' is out of range 0-23"),
            ("0 0 0 * *", "Bad cron expression '0 0 0 * *': day field '0' is out of range 1-31"),
            ("0 0 * 13 *", "Bad cron expression '0 0 * 13 *': month field '13' is out of range "
                           "1-12 or jan-dec"),
            ("0 0 * * 8", "Bad cron expression '0 0 * * 8': weekday field '8' is out of range "
                          "0-7 (0 and 7 are Sunday) or sun-sat"),
            ("60 * * * * *", "Bad cron expression '60 * * * * *': second field '60' is out of "
                             "range 0-59"),
            ("1,61 * * * *", "Bad cron expression '1,61 * * * *': minute field '1,61' is out of "
                             "range 0-59"),
            ("*/0 * * * *", "Bad cron expression '*/0 * * * *': minute field '*/0' has a step "
                            "of 0; steps start at 1"),
            ("0 5-2 * * *", "Bad cron expression '0 5-2 * * *': hour field '5-2' has a range "
                            "that ends before it starts; write ranges low-high within 0-23"),
            ("0 0 * * mnday", "Bad cron expression '0 0 * * mnday': weekday field 'mnday' is not "
                              "valid; use numbers or names like 'mon'"),
            ("0 0 * * fir", "Bad cron expression '0 0 * * fir': weekday field 'fir' is not "
                            "valid (did you mean 'fri'?); use numbers or names like 'mon'"),
            ("0 0 31 2 *", "Bad cron expression '0 0 31 2 *': it never fires: day 31 does not "
                           "occur in the chosen months"),
            ("@reboot", "Bad cron expression '@reboot': unknown nickname; use @hourly, @daily, "
                        "@weekly, @monthly or @yearly"),
            ("@dayly", "Bad cron expression '@dayly': unknown nickname (did you mean '@daily'?); "
                       "use @hourly, @daily, @weekly, @monthly or @yearly"),
        ],
    )  # fmt: skip
    def test_messages(self, expr: str, message: str) -> None:
        with pytest.raises(TriggerParseError) as err:
            CronTrigger(expr, timezone="UTC")
        assert str(err.value) == message

    @pytest.mark.parametrize("expr", ["0 0 L * *", "0 0 ? * mon", "0 0 * * 1#2", "a b c d e"])
    def test_unsupported_syntax_names_the_field(self, expr: str) -> None:
        with pytest.raises(TriggerParseError, match=r"field '.+' is not valid"):
            CronTrigger(expr, timezone="UTC")

    def test_not_a_string(self) -> None:
        with pytest.raises(InvalidArgumentError, match="must be a string"):
            CronTrigger(5, timezone="UTC")  # type: ignore[arg-type]

    def test_end_before_start(self) -> None:
        with pytest.raises(InvalidArgumentError, match="is before start"):
            CronTrigger("0 9 * * *", timezone="UTC", start="2026-02-01", end="2026-01-01")

    def test_naive_after_is_refused(self) -> None:
        with pytest.raises(InvalidArgumentError, match="aware"):
            CronTrigger("0 9 * * *", timezone="UTC").next_fire_time(datetime(2026, 1, 1))

    def test_bad_start_string(self) -> None:
        with pytest.raises(TriggerParseError, match="Bad start 'soon': expected an ISO 8601"):
            CronTrigger("0 9 * * *", timezone="UTC", start="soon")


class TestState:
    def test_round_trip(self) -> None:
        trigger = CronTrigger(
            "*/5 * * * mon-fri", timezone="Europe/Berlin", start=datetime(2026, 3, 1)
        )
        state = trigger.to_state()
        assert state == {
            "version": 1,
            "type": "cron",
            "expr": "*/5 * * * mon-fri",
            "timezone": "Europe/Berlin",
            "start": "2026-03-01T00:00:00+01:00",
            "end": None,
        }
        restored = trigger_from_state(state)
        assert restored == trigger
        after = utc(2026, 3, 29, 0, 50)
        assert fires(restored, after, 5) == fires(trigger, after, 5)

    def test_newer_version_is_refused(self) -> None:
        state = {**CronTrigger("0 9 * * *", timezone="UTC").to_state(), "version": 3}
        with pytest.raises(StateVersionError, match="cron trigger state version 3.*newer"):
            trigger_from_state(state)

    def test_unknown_zone_in_state(self) -> None:
        state = {**CronTrigger("0 9 * * *", timezone="UTC").to_state(), "timezone": "Mars/Base"}
        with pytest.raises(StateVersionError, match="Unknown time zone 'Mars/Base'"):
            trigger_from_state(state)
