"""The magics read durations, zones and job names with the core's one rule for each
(``parse_duration``, ``check_zone``, ``check_name``), as the API does
(``tests/core/test_rules.py``): tested here at the level of the magics' parser functions."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from traitlets import TraitError

from nbsched import kernel
from nbsched.kernel.config import NbschedConfig
from nbsched.kernel.parsing import _check_name, _seconds, _zone

from .conftest import TestingShell

RULE = (
    "a job name is 1 to 200 printable characters, without spaces at either end, not "
    "starting with '-'"
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("2.5", 2.5), ("30s", 30), ("2 mins", 120), ("2m", 120), ("1h30m", 5400),
     ("1 hour and 30 minutes", 5400), ("250ms", 0.25), ("1w", 604800), ("0", 0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert _seconds(text, "--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5s", "--timeout: Duration '-5s' is negative; use a positive duration such as '10s' "
                "or '5m'"),
        ("abc", "--timeout: Cannot read duration 'abc'; use seconds (30) or '30s', '5m', '2h', "
                "'1d', '1h30m' or '1 hour and 30 minutes'"),
        ("", "--timeout: Empty duration; use seconds (30) or '30s'"),
    ],
)  # fmt: skip
def test_duration_mistakes(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        _seconds(text, "--timeout")
    assert type(info.value) is UsageError and str(info.value).startswith(message)


def test_zones() -> None:
    assert _zone("Europe/Paris") == "Europe/Paris"
    assert _zone("europe/paris") == "Europe/Paris"
    with pytest.raises(UsageError) as info:
        _zone("Europe/Pariss")
    assert str(info.value) == (
        "--tz: Unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?)"
    )


def test_config_zone_uses_the_same_check() -> None:
    assert NbschedConfig(timezone="Europe/Paris").timezone == "Europe/Paris"
    with pytest.raises(TraitError) as info:
        NbschedConfig(timezone="Europe/Pariss")
    assert str(info.value) == (
        "NbschedConfig.timezone: Unknown time zone 'Europe/Pariss' (did you mean "
        "'Europe/Paris'?)"
    )


@pytest.mark.parametrize("name", ["tick", "daily report", "a-b"])
def test_names(name: str) -> None:
    assert _check_name(name) == name


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("-x", "Job name '-x' starts with '-'"),
        (" x", "Job name ' x' has spaces at an end"),
        (" ", "Job name ' ' is empty"),
        ("a\x07b", "Job name 'a\\x07b' has control characters"),
        ("x" * 201, f"Job name {'x' * 20!r}... is 201 characters long"),
    ],
)
def test_name_mistakes_say_the_rule(name: str, what: str) -> None:
    with pytest.raises(UsageError) as info:
        _check_name(name)
    assert str(info.value) == f"--name: {what}; {RULE}"


def test_every_and_timeout_read_the_same_durations(ext: TestingShell) -> None:
    """``--every``, ``--timeout`` and ``--misfire-grace`` read durations with one grammar."""
    ext.run_line_magic(
        "schedule", 'add f --every "2 mins" --timeout "2 mins" --misfire-grace "1 min" --name t'
    )
    job = kernel.current().get_job("t")
    assert job.timeout == 120 and job.misfire_grace_time == 60
    assert job.trigger.describe() == "Every 2 minutes"


def test_a_named_dask_cluster_adds_the_dask_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbsched.executors.dask import DaskJobExecutor
    from nbsched.executors.notebook import NotebookJobExecutor

    monkeypatch.delenv("NBSCHED_DASK_ADDRESS", raising=False)
    assert set(NbschedConfig().executors()) == {"notebook"}
    found = NbschedConfig(dask_address="tcp://127.0.0.1:8786").executors()
    assert isinstance(found["dask"], DaskJobExecutor)
    assert isinstance(found["notebook"], NotebookJobExecutor)
    monkeypatch.setenv("NBSCHED_DASK_ADDRESS", "tcp://127.0.0.2:8786")  # (never contacted)
    config = NbschedConfig(dask_address="tcp://127.0.0.1:8786")
    assert config.effective_dask_address() == "tcp://127.0.0.2:8786"  # the environment wins
    sched = config.build_scheduler(owner=None)
    assert isinstance(sched._engine.executor("dask"), DaskJobExecutor)
