from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nbsched.abc import Trigger
from nbsched.errors import NbschedError, TriggerParseError
from nbsched.triggers import CronTrigger, DateTrigger, IntervalTrigger, parse_trigger

TZ = "Europe/Paris"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def cron(expr: str) -> CronTrigger:
    return CronTrigger(expr, timezone=TZ)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # durations -> intervals
        ("30s", IntervalTrigger(30)),
        ("5m", IntervalTrigger(300)),
        ("2h", IntervalTrigger(7200)),
        ("1d", IntervalTrigger(86400)),
        ("1w", IntervalTrigger(7 * 86400)),
        ("1h30m", IntervalTrigger(5400)),
        ("1h 30m", IntervalTrigger(5400)),
        ("1.5h", IntervalTrigger(5400)),
        ("every 10s", IntervalTrigger(10)),
        ("every 5 minutes", IntervalTrigger(300)),
        ("every 1 hour and 30 minutes", IntervalTrigger(5400)),
        ("every 1.5 hours", IntervalTrigger(5400)),
        ("every 2 hours", IntervalTrigger(7200)),
        ("every 90 secs", IntervalTrigger(90)),
        ("every second", IntervalTrigger(1)),
        ("every minute", IntervalTrigger(60)),
        ("every hour", IntervalTrigger(3600)),
        ("every 0.5s", IntervalTrigger(0.5)),
        # cron
        ("*/5 * * * *", cron("*/5 * * * *")),
        ("cron */5 * * * *", cron("*/5 * * * *")),
        ("0 30 9 * * mon-fri", cron("0 30 9 * * 1-5")),
        ("@daily", cron("0 0 * * *")),
        ("0 9 * * MON", cron("0 9 * * 1")),
        # phrases -> cron
        ("daily at 09:00", cron("0 9 * * *")),
        ("every day at 9:00", cron("0 9 * * *")),
        ("every weekday at 9:30", cron("30 9 * * 1-5")),
        ("every weekday at 09:30", cron("30 9 * * 1-5")),
        ("weekdays at 9:30", cron("30 9 * * 1-5")),
        ("every monday at 8:00", cron("0 8 * * 1")),
        ("every mon at 8:00", cron("0 8 * * 1")),
        ("mondays at 8:00", cron("0 8 * * 1")),
        ("on mondays at 8am", cron("0 8 * * 1")),
        ("every weekend at 10:00", cron("0 10 * * 6,7")),
        ("every saturday and sunday at 10:00", cron("0 10 * * 6,7")),
        ("every mon, wed and fri at 6:30pm", cron("30 18 * * 1,3,5")),
        ("at 7:15 pm every friday", cron("15 19 * * 5")),
        ("daily at 12am", cron("0 0 * * *")),
        ("daily at 12pm", cron("0 12 * * *")),
        ("daily at noon", cron("0 12 * * *")),
        ("daily at midnight", cron("0 0 * * *")),
        ("daily at 23:59:30", cron("30 59 23 * * *")),
        ("daily at 9", cron("0 9 * * *")),
        ("hourly", cron("0 * * * *")),
        ("hourly at :15", cron("15 * * * *")),
        ("every hour at :45", cron("45 * * * *")),
        ("daily", cron("0 0 * * *")),
        ("every day", cron("0 0 * * *")),
        ("every weekday", cron("0 0 * * 1-5")),
        ("weekly", cron("0 0 * * 0")),
        ("monthly", cron("0 0 1 * *")),
        ("yearly", cron("0 0 1 1 *")),
        ("annually", cron("0 0 1 1 *")),
        # dates
        ("at 2026-12-01 09:00", DateTrigger(datetime(2026, 12, 1, 9), timezone=TZ)),
        ("2026-12-01T09:00", DateTrigger(datetime(2026, 12, 1, 9), timezone=TZ)),
        ("2026-12-01 09:00:30", DateTrigger(datetime(2026, 12, 1, 9, 0, 30), timezone=TZ)),
        ("2026-12-01T09:00+01:00", DateTrigger("2026-12-01T08:00Z", timezone=TZ)),
        ("2026-12-01T09:00Z", DateTrigger("2026-12-01T09:00+00:00", timezone=TZ)),
        ("at 2026-12-01", DateTrigger(datetime(2026, 12, 1), timezone=TZ)),
        ("on 2026-12-01 at 9am", DateTrigger(datetime(2026, 12, 1, 9), timezone=TZ)),
        ("in 10 minutes", DateTrigger(delay=600, timezone=TZ)),
        ("in 2h", DateTrigger(delay=7200, timezone=TZ)),
        ("in 1h30m", DateTrigger(delay=5400, timezone=TZ)),
    ],
)
def test_forms(text: str, expected: Trigger, system_now: datetime) -> None:
    # (expected was built before the clock stopped: build it again for the relative forms)
    if isinstance(expected, IntervalTrigger):
        expected = IntervalTrigger(expected.interval)
    elif isinstance(expected, DateTrigger) and expected.delay is not None:
        expected = DateTrigger(delay=expected.delay, timezone=TZ)
    assert parse_trigger(text, timezone=TZ) == expected


@pytest.mark.parametrize(
    "text",
    ["EVERY WEEKDAY AT 9:30", "  every   weekday  at   9:30 ", "Every Weekday At 9:30"],
)
def test_case_and_spaces(text: str) -> None:
    assert parse_trigger(text, timezone=TZ) == cron("30 9 * * 1-5")


def test_same_text_at_the_same_time_gives_equal_triggers() -> None:
    for text in ("every 10s", "every weekday at 9:30", "in 10 minutes", "at 2026-12-01 09:00"):
        assert parse_trigger(text, now=T0) == parse_trigger(text, now=T0)
    assert parse_trigger("every 10s", now=T0) != parse_trigger("every 10s", now=T0 + SECOND)


def test_contract_example() -> None:
    trigger = parse_trigger("every weekday at 09:30", timezone="Europe/Paris")
    assert trigger.describe() == "At 09:30, Monday through Friday"
    nxt = trigger.next_fire_time(datetime.fromisoformat("2026-12-04T12:00+01:00"))  # a Friday
    assert nxt == datetime.fromisoformat("2026-12-07T09:30+01:00")


def test_every_is_a_fixed_grid_from_when_it_was_parsed() -> None:
    trigger = parse_trigger("every 7s")  # the system clock: t0 is the time of this call
    assert isinstance(trigger, IntervalTrigger)
    t0 = trigger.start
    f1 = trigger.next_fire_time(t0)
    assert f1 == t0 + 7 * SECOND
    # asked 3.2 s after a fire, the next one is still on the grid t0 + 7k (not f1 + 10.2 s)
    assert trigger.next_fire_time(f1 + 3.2 * SECOND) == t0 + 14 * SECOND
    assert parse_trigger("every 7s", now=T0).next_fire_time(T0 + 10 * SECOND) == T0 + 14 * SECOND


def test_in_fires_once_then_is_exhausted() -> None:
    trigger = parse_trigger("in 10 minutes", timezone="UTC", now=T0)
    fire = T0 + timedelta(minutes=10)
    assert trigger.next_fire_time(T0) == fire
    assert trigger.next_fire_time(T0 + timedelta(minutes=9)) == fire
    assert trigger.next_fire_time(fire) is None  # once, not every 10 minutes
    assert trigger.next_fire_time(fire + timedelta(days=1)) is None


def test_the_scheduler_anchors_a_parsed_relative_trigger_at_the_job_start() -> None:
    job_start = T0 + timedelta(hours=1)
    every = parse_trigger("every 7s", now=T0).anchor(job_start)
    assert every.next_fire_time(job_start) == job_start + 7 * SECOND
    once = parse_trigger("in 10 minutes", now=T0).anchor(job_start)
    assert once.next_fire_time(job_start) == job_start + timedelta(minutes=10)


def test_now_must_be_aware() -> None:
    with pytest.raises(NbschedError, match="^now must be an aware datetime, got naive"):
        parse_trigger("every 7s", now=datetime(2026, 1, 1))
    with pytest.raises(NbschedError, match="^now must be an aware datetime, got naive"):
        parse_trigger("in 7s", now=datetime(2026, 1, 1))


def test_phrases_and_cron_take_the_zone() -> None:
    trigger = parse_trigger("daily at 9:00", timezone="America/New_York")
    assert isinstance(trigger, CronTrigger)
    assert str(trigger.timezone) == "America/New_York"


FORMS = (
    "use a duration ('10s', '5m', '1h30m', 'every 5 minutes'), a cron expression "
    "('*/5 * * * *'), a phrase ('every weekday at 9:30') or a date ('at 2026-12-01 09:00')"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("evry 5m", f"Cannot understand schedule 'evry 5m' (did you mean 'every'?); {FORMS}"),
        ("whenever", f"Cannot understand schedule 'whenever'; {FORMS}"),
        ("every 2 days at 9:00", f"Cannot understand schedule 'every 2 days at 9:00'; {FORMS}"),
        ("monday at 8:00", "Cannot understand schedule 'monday at 8:00' (did you mean "
                           f"'every monday at 8:00'?); {FORMS}"),
        ("", f"Empty schedule; {FORMS}"),
        ("0s", "Duration '0s' is zero; use a positive duration such as '10s' or '5m'"),
        ("every 0 minutes", "Duration '0 minutes' is zero; use a positive duration such as "
                            "'10s' or '5m'"),
        ("in 0s", "Duration '0s' is zero; use a positive duration such as '10s' or '5m'"),
        ("-5m", "Duration '-5m' is negative; use a positive duration such as '10s' or '5m'"),
        ("every -5 minutes", "Duration '-5 minutes' is negative; use a positive duration such "
                             "as '10s' or '5m'"),
        ("every 30", "Duration '30' has no unit; write e.g. '30s', '30m' or '30h'"),
        ("daily at 25:00", "Bad time '25:00' in 'daily at 25:00': hours must be 0-23, minutes "
                           "and seconds 0-59, e.g. '09:30' or '23:59:30'"),
        ("daily at 9:60", "Bad time '9:60' in 'daily at 9:60': hours must be 0-23, minutes "
                          "and seconds 0-59, e.g. '09:30' or '23:59:30'"),
        ("daily at 13pm", "Bad time '13pm' in 'daily at 13pm': with am/pm the hour must be 1-12"),
        ("daily at teatime", "Bad time 'teatime' in 'daily at teatime'; use 24-hour 'HH:MM' "
                             "such as '09:30' or '17:00', or '9am' / '5:30pm'"),
        ("hourly at :75", "Bad minute in 'hourly at :75': it must be 0-59, e.g. ':15'"),
        ("at 09:00", "Schedule 'at 09:00' has a time but no day; use 'daily at 09:00' for "
                     "every day or 'at 2026-12-01 09:00' for once"),
        ("at 2026-13-01 09:00", "Bad date 'at 2026-13-01 09:00' (month must be in 1..12); use "
                                "e.g. 'at 2026-12-01 09:00'"),
        ("at 2026-12-01 25:00", "Bad time '25:00' in 'at 2026-12-01 25:00': hours must be "
                                "0-23, minutes and seconds 0-59, e.g. '09:30' or '23:59:30'"),
        ("61 * * * *", "Bad cron expression '61 * * * *': minute field '61' is out of range 0-59"),
        ("* * *", "Bad cron expression '* * *': expected 5 fields (minute hour day month "
                  "weekday) or 6 with seconds first, got 3"),
        ("cron 1 2 3", "Bad cron expression '1 2 3': expected 5 fields (minute hour day month "
                       "weekday) or 6 with seconds first, got 3"),
    ],
)  # fmt: skip
def test_errors(text: str, message: str) -> None:
    with pytest.raises(TriggerParseError) as err:
        parse_trigger(text, timezone="UTC")
    assert str(err.value) == message
    assert isinstance(err.value, NbschedError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_unknown_zone() -> None:
    with pytest.raises(TriggerParseError, match=r"^Unknown time zone 'Europe/Pariss' \(did you"):
        parse_trigger("every 10s", timezone="Europe/Pariss")


def test_not_a_string() -> None:
    with pytest.raises(TriggerParseError, match="must be a string, got int"):
        parse_trigger(10)  # type: ignore[arg-type]


def test_every_day_is_wall_clock_but_1d_is_elapsed() -> None:
    assert isinstance(parse_trigger("every day at 9:00", timezone=TZ), CronTrigger)
    interval = parse_trigger("1d")
    assert isinstance(interval, IntervalTrigger) and interval.interval == timedelta(days=1)
