"""Property tests of the triggers (hypothesis), numbered as in STYLE.md section 13."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nbsched.abc import Trigger
from nbsched.errors import TriggerParseError
from nbsched.triggers import CronTrigger, DateTrigger, IntervalTrigger, OrTrigger, parse_trigger
from nbsched.triggers.registry import trigger_from_state

from ._fires import fires as sequence
from ._oracle import offset_changes, oracle_fires

SETTINGS = settings(max_examples=200, deadline=None)

ZONES = [
    ZoneInfo(name)
    for name in ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC")
]
CHANGES = {zone: offset_changes(zone, 2025, 2027) for zone in ZONES}
LOW, HIGH = datetime(2024, 1, 1), datetime(2028, 12, 31)


# -- strategies ---------------------------------------------------------------------------


@st.composite
def instants(draw: st.DrawFn, zone: ZoneInfo | None = None) -> datetime:
    """Aware datetimes, often within two days of a DST change of ``zone``, given either in
    UTC or in the zone itself (so that some carry ``fold=1``; compare those by timestamp:
    Python compares two datetimes sharing a ZoneInfo by wall time)."""
    zone = zone or draw(st.sampled_from(ZONES))
    changes = CHANGES[zone]
    if changes and draw(st.booleans()):
        base = draw(st.sampled_from(changes))
        seconds = draw(st.integers(-2 * 86400, 2 * 86400))
        micros = draw(st.sampled_from([0, 0, 1, 500_000, 999_999]))
        instant = base + timedelta(seconds=seconds, microseconds=micros)
    else:
        instant = draw(st.datetimes(LOW, HIGH, timezones=st.just(UTC)))
    return instant.astimezone(zone) if draw(st.booleans()) else instant


def _field(low: int, high: int, dst_values: list[int] | None = None) -> st.SearchStrategy[str]:
    values = st.integers(low, high)
    if dst_values:  # the hours in which clocks change, drawn often
        values = st.one_of(st.sampled_from(dst_values), values)
    single = values.map(str)
    step = st.integers(1, (high - low) // 2 + 1).map(lambda k: f"*/{k}")
    span = st.tuples(values, values).map(lambda ab: f"{min(ab)}-{max(ab)}")
    span_step = st.tuples(span, st.integers(1, 5)).map(lambda sk: f"{sk[0]}/{sk[1]}")
    start_step = st.tuples(values, st.integers(1, 10)).map(lambda vk: f"{vk[0]}/{vk[1]}")
    listed = st.lists(values, min_size=2, max_size=3, unique=True).map(
        lambda v: ",".join(map(str, v))
    )
    return st.one_of(st.just("*"), step, single, span, span_step, start_step, listed)


def _mostly_star(other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), st.just("*"), st.just("*"), other)


cron_exprs = st.tuples(
    _field(0, 59),
    _field(0, 23, [0, 1, 2, 3]),
    _mostly_star(_field(1, 31)),
    _mostly_star(st.integers(1, 12).map(str)),
    _mostly_star(st.sampled_from(["1-5", "0", "7", "6,0", "5-7", "3"])),
).map(" ".join)


@st.composite
def cron_triggers(draw: st.DrawFn, with_end: bool = False) -> CronTrigger:
    zone = draw(st.sampled_from(ZONES))
    expr = draw(cron_exprs)
    start = draw(st.none() | instants(zone))
    end = None
    if with_end or draw(st.booleans()):
        end = draw(instants(zone))
        assume(start is None or end.timestamp() >= start.timestamp())
    try:
        return CronTrigger(expr, timezone=zone, start=start, end=end)
    except TriggerParseError:  # "0 0 31 2 *": never fires
        assume(False)
        raise  # pragma: no cover


intervals = st.one_of(
    st.integers(1, 10**6).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 10**11).map(lambda us: timedelta(microseconds=us)),
    st.sampled_from([0.1, 0.25, 1.5, 3600, 86400]).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def interval_triggers(draw: st.DrawFn, with_end: bool = False) -> IntervalTrigger:
    start = draw(instants())
    interval = draw(intervals)
    end = draw(instants()) if with_end or draw(st.booleans()) else None
    assume(end is None or end.timestamp() >= start.timestamp())
    return IntervalTrigger(interval, start=start, end=end)


@st.composite
def date_triggers(draw: st.DrawFn) -> DateTrigger:
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):  # naive: a wall time in the zone, gaps and folds included
        run = draw(st.datetimes(LOW, HIGH))
        return DateTrigger(run, timezone=zone)
    return DateTrigger(draw(instants(zone)), timezone=zone)


triggers: st.SearchStrategy[Trigger] = st.one_of(
    interval_triggers(),
    cron_triggers(),
    date_triggers(),
    st.lists(st.one_of(interval_triggers(), cron_triggers(), date_triggers()), min_size=1,
             max_size=3).map(lambda ts: OrTrigger(*ts)),
)  # fmt: skip


# -- 1. strictly after, strictly increasing -----------------------------------------------


@SETTINGS
@given(trigger=triggers, after=instants())
def test_fire_times_are_strictly_after_and_increasing(trigger: Trigger, after: datetime) -> None:
    previous = after
    for fire in sequence(trigger, after, 6):
        assert fire.utcoffset() is not None
        assert fire.timestamp() > previous.timestamp()
        assert fire > previous
        ts = trigger.next_fire_ts(previous.timestamp())
        assert ts is not None and abs(ts - fire.timestamp()) < 1e-6
        previous = fire
    if len(sequence(trigger, after, 6)) < 6:
        assert trigger.next_fire_ts(previous.timestamp()) is None


# -- 1b. a fixed schedule: the same set of fire times whatever ``after`` asks ---------------


@st.composite
def parsed_relative_triggers(draw: st.DrawFn) -> Trigger:
    """``every N`` / ``in N`` schedules, parsed at a drawn time (at the real time, data
    generation would not repeat: ``test_parse`` has those examples)."""
    amount = draw(st.integers(1, 90))
    unit = draw(st.sampled_from(["s", "m", "h", " seconds", " minutes"]))
    text = draw(st.sampled_from(["every {}", "{}", "in {}"])).format(f"{amount}{unit}")
    now = draw(instants())
    return parse_trigger(text, timezone=draw(st.sampled_from(ZONES)), now=now)


@SETTINGS
@given(
    trigger=st.one_of(triggers, parsed_relative_triggers()),
    after=instants(),
    data=st.data(),
)
def test_fire_times_do_not_depend_on_after(
    trigger: Trigger, after: datetime, data: st.DataObject
) -> None:
    """``next_fire_time(a)`` is the first element after ``a`` of one fixed set of times: asked
    from anywhere between two consecutive fire times, the answer is the later of them, and
    after the last one, ``None``."""
    fires = sequence(trigger, after, 4)
    previous = _micros(after)
    for fire in fires:
        # a point in [previous, fire), in whole microseconds of absolute time (``zoned +
        # timedelta`` would be wall-clock arithmetic)
        between = data.draw(st.integers(previous, _micros(fire) - 1))
        asked = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=between)
        assert trigger.next_fire_time(asked) == fire, (asked, fire)
        ts = trigger.next_fire_ts(asked.timestamp())
        assert ts is not None and abs(ts - fire.timestamp()) < 1e-6
        previous = _micros(fire)
    if len(fires) < 4:  # exhausted: nothing later, however far ahead it is asked
        later = previous + data.draw(st.integers(0, 10**14))
        asked = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=later)
        assert trigger.next_fire_time(asked) is None


def _micros(instant: datetime) -> int:
    return (instant - datetime.fromtimestamp(0, UTC)) // timedelta(microseconds=1)


# -- 2. intervals: exactly start + k * interval -------------------------------------------


@SETTINGS
@given(start=instants(), interval=intervals, offset=st.integers(-(10**12), 10**13))
def test_interval_fire_times_are_exact_multiples(
    start: datetime, interval: timedelta, offset: int
) -> None:
    trigger = IntervalTrigger(interval, start=start)
    start = start.astimezone(UTC)  # zoned + timedelta would be wall-clock arithmetic
    after = start + timedelta(microseconds=offset)
    fire = trigger.next_fire_time(after)
    assert fire is not None
    k, remainder = divmod(fire - start, interval)
    assert remainder == timedelta(0) and k >= 0
    assert fire > after and (k == 0 or start + (k - 1) * interval <= after)
    # and the following ones continue the same grid, with no drift
    for step, later in enumerate(sequence(trigger, fire, 3), start=1):
        assert later == start + (k + step) * interval
    ts = trigger.next_fire_ts(after.timestamp())
    assert ts is not None and abs(ts - fire.timestamp()) < 1e-6


# -- 3. state round trip ------------------------------------------------------------------


@SETTINGS
@given(trigger=triggers, after=instants())
def test_state_round_trip_continues_the_same_sequence(trigger: Trigger, after: datetime) -> None:
    state = json.loads(json.dumps(trigger.to_state()))
    restored = trigger_from_state(state)
    assert restored == trigger and hash(restored) == hash(trigger)
    assert pickle.loads(pickle.dumps(trigger)) == trigger  # process executors pickle jobs
    assert restored.to_state() == state
    first = sequence(trigger, after, 3)
    assert [f.timestamp() for f in sequence(restored, after, 3)] == [f.timestamp() for f in first]
    if first:  # restored in the middle of the sequence, it carries on identically
        middle = trigger_from_state(json.loads(json.dumps(restored.to_state())))
        assert sequence(middle, first[0], 2) == sequence(trigger, first[0], 2)


# -- 4. end is never exceeded -------------------------------------------------------------


@SETTINGS
@given(
    trigger=st.one_of(interval_triggers(with_end=True), cron_triggers(with_end=True)),
    after=instants(),
)
def test_end_is_never_exceeded(trigger: IntervalTrigger | CronTrigger, after: datetime) -> None:
    assert trigger.end is not None
    fires = sequence(trigger, min(after, trigger.end - timedelta(hours=1)), 20)
    assert all(fire <= trigger.end for fire in fires)
    if trigger.start is not None:
        assert all(fire >= trigger.start for fire in fires)


# -- 5. cron agrees with a brute-force oracle, DST included -------------------------------


@settings(max_examples=250, deadline=None)
@given(expr=cron_exprs, zone=st.sampled_from(ZONES), data=st.data())
def test_cron_agrees_with_brute_force_oracle(
    expr: str, zone: ZoneInfo, data: st.DataObject
) -> None:
    try:
        trigger = CronTrigger(expr, timezone=zone)
    except TriggerParseError:
        assume(False)
        raise  # pragma: no cover
    after = data.draw(instants(zone))
    horizon = timedelta(days=3)
    expected = oracle_fires(expr, zone, after, horizon)[:4]
    got: list[datetime] = []
    previous = after
    while len(got) < 4:
        nxt = trigger.next_fire_time(previous)
        if nxt is None or nxt > after + horizon:
            break
        got.append(nxt)
        previous = nxt
    assert got == expected, (expr, zone.key, after.isoformat())
    # a leading seconds field of 0 changes nothing
    with_seconds = CronTrigger(f"0 {expr}", timezone=zone)
    assert with_seconds.next_fire_time(after) == trigger.next_fire_time(after)


# -- 6. text forms parse to the triggers they name ----------------------------------------

_UNITS = {"h": ("h", "hour"), "m": ("m", "minute"), "s": ("s", "second")}


@SETTINGS
@given(
    parts=st.tuples(st.integers(0, 48), st.integers(0, 59), st.integers(0, 59)),
    style=st.sampled_from(["compact", "spaced", "words"]),
    every=st.booleans(),
)
def test_duration_text_parses_to_its_interval(
    parts: tuple[int, int, int], style: str, every: bool
) -> None:
    assume(any(parts))
    chunks = []
    for value, key in zip(parts, "hms", strict=True):
        if value:
            short, word = _UNITS[key]
            chunks.append(f"{value} {word}{'' if value == 1 else 's'}" if style == "words"
                          else f"{value}{short}")  # fmt: skip
    text = ("" if style == "compact" else " ").join(chunks)
    if every:
        text = "every " + text
    hours, minutes, seconds = parts
    now = datetime(2026, 3, 1, tzinfo=UTC)
    expected = IntervalTrigger(timedelta(hours=hours, minutes=minutes, seconds=seconds), start=now)
    assert parse_trigger(text, now=now) == expected
    # and what describe() says reads back as the same interval
    assert parse_trigger(expected.describe().lower(), now=now) == expected


_DAY_TEXTS = {
    "every day": "*", "daily": "*", "every weekday": "1-5", "weekdays": "1-5",
    "every weekend": "6,7", "every monday": "1", "every mon": "1", "mondays": "1",
    "every tuesday": "2", "every wednesday": "3", "thursdays": "4", "every fri": "5",
    "every saturday": "6", "every sunday": "7", "every mon and thu": "1,4",
}  # fmt: skip


@SETTINGS
@given(
    days=st.sampled_from(sorted(_DAY_TEXTS)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    padded=st.booleans(),
    upper=st.booleans(),
    zone=st.sampled_from(ZONES),
)
def test_phrase_text_parses_to_its_cron(
    days: str, hour: int, minute: int, padded: bool, upper: bool, zone: ZoneInfo
) -> None:
    clock = f"{hour:02d}:{minute:02d}" if padded else f"{hour}:{minute:02d}"
    text = f"{days} at {clock}"
    text = text.upper() if upper else text
    expected = CronTrigger(f"{minute} {hour} * * {_DAY_TEXTS[days]}", timezone=zone)
    assert parse_trigger(f"  {text} ", timezone=zone) == expected
    assert parse_trigger(f"cron {minute} {hour} * * {_DAY_TEXTS[days]}", timezone=zone) == expected


@SETTINGS
@given(run=st.datetimes(LOW, HIGH).map(lambda d: d.replace(microsecond=0)), t=st.booleans(),
       zone=st.sampled_from(ZONES))  # fmt: skip
def test_date_text_parses_to_its_date_trigger(run: datetime, t: bool, zone: ZoneInfo) -> None:
    text = run.isoformat(sep="T" if t else " ")
    expected = DateTrigger(run, timezone=zone)
    assert parse_trigger(text, timezone=zone) == expected
    assert parse_trigger(f"at {text}", timezone=zone) == expected
