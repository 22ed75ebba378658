"""Fixtures for the panel tests: a scheduler on a fake clock (real kernels come from the
root conftest's ``kernel_factory``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbsched import Scheduler
from nbsched.testing import FakeClock


@pytest.fixture
def sched(clock: FakeClock) -> Iterator[Scheduler]:
    """A started in-memory scheduler driven by a fake clock, in UTC."""
    s = Scheduler(clock=clock, timezone="UTC", max_workers=4)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()
