"""One rule per concept for the whole package, as the API applies it: job names
(``nbsched.jobs.check_name``), durations (``parse_duration``) and zones (``check_zone``).
The magics apply the same rules (``tests/kernel/test_value_rules.py``)."""

from __future__ import annotations

import pytest

from nbsched import Scheduler
from nbsched.errors import InvalidArgumentError, NbschedError, TriggerParseError
from nbsched.jobs import check_name
from nbsched.testing import FakeClock

RULE = (
    "a job name is 1 to 200 printable characters, without spaces at either end, not "
    "starting with '-'"
)


def job() -> None:
    pass


@pytest.mark.parametrize("name", ["a", "refresh-data", "daily report", "ünï ✓", "x" * 200])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("", "Job name '' is empty"),
        ("   ", "Job name '   ' is empty"),
        (" padded ", "Job name ' padded ' has spaces at an end"),
        ("-x", "Job name '-x' starts with '-'"),
        ("--every", "Job name '--every' starts with '-'"),
        ("a\nb", "Job name 'a\\nb' has control characters"),
        ("tab\there", "Job name 'tab\\there' has control characters"),
        ("x" * 201, f"Job name {'x' * 20!r}... is 201 characters long"),
        (5, "Job name 5 is not a string"),
        (None, "Job name None is not a string"),
    ],
)
def test_bad_names_say_the_rule(name: object, what: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_name(name)
    assert str(info.value) == f"{what}; {RULE}"


@pytest.mark.parametrize("name", ["-x", " padded", "a\x00b", "x" * 201])
def test_the_api_applies_the_name_rule(sched: Scheduler, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"; {RULE}$"):
        sched.add_job(job, "every 10s", name=name)
    assert sched.get_jobs() == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": "2 mins"}, {"timeout": 120.0}),
        ({"timeout": "1h30m"}, {"timeout": 5400.0}),
        ({"timeout": 30}, {"timeout": 30.0}),
        ({"misfire_grace_time": "30s"}, {"misfire_grace_time": 30.0}),
        ({"misfire_grace_time": "0"}, {"misfire_grace_time": 0.0}),
        ({"retries": 2, "retry_delay": "1 minute"}, {"retry_delay": 60.0}),
        ({"retries": 2, "retry_delay": "250ms"}, {"retry_delay": 0.25}),
    ],
)
def test_api_durations_read_like_the_magics(
    sched: Scheduler, options: dict[str, object], expected: dict[str, float]
) -> None:
    added = sched.add_job(job, "every 10s", name="j", **options)  # type: ignore[arg-type]
    for key, value in expected.items():
        assert getattr(added, key) == value
        assert getattr(sched.get_job("j"), key) == value


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"timeout": "abc"}, TriggerParseError, "timeout: Cannot read duration 'abc'; use seconds"),
        ({"timeout": "-5s"}, TriggerParseError, "timeout: Duration '-5s' is negative"),
        ({"timeout": "0s"}, InvalidArgumentError, "timeout must be more than 0 seconds, got '0s'"),
        ({"misfire_grace_time": -1}, InvalidArgumentError,
         "misfire_grace_time: Duration -1 is negative"),
        ({"retry_delay": "soon"}, TriggerParseError, "retry_delay: Cannot read duration 'soon'"),
        ({"retry_delay": True}, InvalidArgumentError, "retry_delay: A duration must be seconds"),
    ],
)  # fmt: skip
def test_api_duration_errors_name_the_argument(
    sched: Scheduler, options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        sched.add_job(job, "every 10s", name="j", **options)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert isinstance(info.value, NbschedError) and "\n" not in str(info.value)
    assert sched.get_jobs() == []


def test_scheduler_zone_uses_the_one_zone_check(clock: FakeClock) -> None:
    with pytest.raises(
        TriggerParseError,
        match=r"^Unknown time zone 'Europe/Pariss' \(did you mean 'Europe/Paris'\?\)$",
    ):
        Scheduler(clock=clock, timezone="Europe/Pariss")
    assert str(Scheduler(clock=clock, timezone="europe/paris").timezone) == "Europe/Paris"
