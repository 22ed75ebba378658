"""Fixtures for the process executor: a started executor with a recording callback pair
(``_recorder``); every executor is shut down at teardown, and no job process of the test
process may survive it (``tests.helpers.processes``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbsched._clock import SystemClock
from nbsched.executors.process import ProcessJobExecutor
from tests.helpers.processes import kill_marked, wait_no_marked

from ._recorder import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_executor(recorder: Recorder) -> Iterator[Callable[..., ProcessJobExecutor]]:
    """Factory for started executors; every one is shut down at teardown, and no job process
    of this test process may survive it."""
    made: list[ProcessJobExecutor] = []

    def make(max_workers: int = 2, **kwargs: Any) -> ProcessJobExecutor:
        ex = ProcessJobExecutor(max_workers, **kwargs)
        ex.start(SystemClock(), recorder.on_started, recorder.on_finished)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown()
    try:
        wait_no_marked(os.getpid(), timeout=10)
    finally:
        left = kill_marked(os.getpid())
    assert not left, f"job processes survived shutdown: {left}"
    assert not recorder.duplicates, f"runs reported twice: {recorder.duplicates}"


@pytest.fixture
def executor(make_executor: Callable[..., ProcessJobExecutor]) -> ProcessJobExecutor:
    return make_executor(2)
