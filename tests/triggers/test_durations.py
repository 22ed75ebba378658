"""The one duration grammar and the one short format (``nbsched.triggers.durations``)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbsched.errors import InvalidArgumentError, NbschedError, TriggerParseError
from nbsched.triggers.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30), ("2.5", 2.5), (" 30 ", 30), ("0", 0), ("0s", 0),
        ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1w", 604800),
        ("1h30m", 5400), ("1h 30m", 5400), ("1.5h", 5400), ("250ms", 0.25), (".5s", 0.5),
        ("2 mins", 120), ("2 MINS", 120), ("1 hour and 30 minutes", 5400),
        ("1 hour, 30 minutes", 5400), ("90 secs", 90), ("2 hrs", 7200), ("3 days", 259200),
    ],
)  # fmt: skip
def test_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), (2.5, 2.5), (0, 0.0), (timedelta(minutes=2), 120.0)]
)
def test_numbers_are_seconds(value: float | timedelta, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("-5s", TriggerParseError,
         "Duration '-5s' is negative; use a positive duration such as '10s' or '5m'"),
        ("-1h 30m", TriggerParseError,
         "Duration '-1h 30m' is negative; use a positive duration such as '10s' or '5m'"),
        ("abc", TriggerParseError,
         "Cannot read duration 'abc'; use seconds (30) or '30s', '5m', '2h', '1d', '1h30m' or "
         "'1 hour and 30 minutes'"),
        ("5 fortnights", TriggerParseError, "Cannot read duration '5 fortnights'"),
        ("1h 30", TriggerParseError, "Cannot read duration '1h 30'"),
        ("  ", TriggerParseError, "Empty duration; use seconds (30) or '30s'"),
        (-5, InvalidArgumentError,
         "Duration -5 is negative; use 0 or more seconds, e.g. 10 or '5m'"),
        (math.nan, InvalidArgumentError, "Duration nan is not a finite number of seconds"),
        (math.inf, InvalidArgumentError, "Duration inf is not a finite number of seconds"),
        (True, InvalidArgumentError, "A duration must be seconds, a timedelta or text"),
        (None, InvalidArgumentError, "A duration must be seconds, a timedelta or text such as"),
    ],
)  # fmt: skip
def test_errors_say_what_was_wrong_and_what_is_right(
    text: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert isinstance(info.value, NbschedError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"), (0.12, "120ms"), (0.0005, "0.5ms"), (1, "1s"), (3.4, "3.4s"),
        (3.456, "3.46s"), (10, "10s"), (12.5, "12.5s"), (59.9, "59.9s"), (60, "1m"),
        (65, "1m5s"), (5400, "1h30m"), (7200, "2h"), (86400 * 2, "2d"),
        (90061, "1d1h1m1s"), (-65, "-1m5s"),
    ],
)  # fmt: skip
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, "10", None, True])
def test_format_needs_a_finite_number(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="needs a number of seconds"):
        format_duration(bad)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(0, 10**9))
def test_what_is_written_reads_back_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@settings(max_examples=300, deadline=None)
@given(seconds=st.floats(0, 59.9, allow_nan=False))
def test_what_is_written_reads_back_to_three_digits(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=5e-3, abs=1e-6)
