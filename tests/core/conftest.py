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


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'jobs.db'}"
