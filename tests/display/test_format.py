"""nbsched.display.format: durations, relative and absolute times, tidied tracebacks."""

from __future__ import annotations

import traceback
from datetime import UTC
from pathlib import Path

import pytest

import nbsched
from nbsched.display import fmt_abs, fmt_duration, fmt_relative, format_duration, tidy_error


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (3.4, "3.4s"),
        (10, "10s"),
        (59.9, "59.9s"),
        (65, "1m5s"),
        (120, "2m"),
        (5400, "1h30m"),
        (2 * 86400, "2d"),
        (86400 + 3600 + 1, "1d1h1s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_fmt_duration_of_nothing_is_empty() -> None:
    assert fmt_duration(None) == ""
    assert fmt_duration(3.4) == "3.4s"


@pytest.mark.parametrize(
    ("delta", "text"),
    [(0.2, "now"), (4, "in 4s"), (-180, "3m ago"), (3.6, "in 4s"), (-7200, "2h ago")],
)
def test_fmt_relative(delta: float, text: str) -> None:
    now = 1_800_000_000.0
    assert fmt_relative(now + delta, now) == text
    assert fmt_relative(None, now) == ""


def test_fmt_abs_in_a_zone() -> None:
    assert fmt_abs(0, UTC) == "1970-01-01 00:00:00 UTC"
    assert fmt_abs(None, UTC) == ""


def test_tidy_error_drops_nbsched_frames_and_keeps_the_users() -> None:
    package = Path(nbsched.__file__).resolve().parent
    user = compile("def job():\n    raise ValueError('kaput')\n", "<nbsched cell job j>", "exec")
    ns: dict[str, object] = {}
    exec(user, ns)
    # a frame of nbsched's own (as the executor is) around the user's function
    runner = compile("def run(f):\n    f()\n", str(package / "executors" / "thread.py"), "exec")
    exec(runner, ns)
    try:
        ns["run"](ns["job"])  # type: ignore[operator]
    except ValueError:
        error = traceback.format_exc()
    assert str(package / "executors") in error
    tidy = tidy_error(error)
    assert str(package) not in tidy
    assert '"<nbsched cell job j>", line 2, in job' in tidy
    assert tidy.endswith("ValueError: kaput")
