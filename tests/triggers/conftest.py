"""Fixtures of the trigger tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nbsched._clock import SystemClock

#: what the system clock says in tests that stop it (see ``system_now``)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def system_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Stop the system clock at :data:`NOW`: a trigger made without a start (``every
    10s``, ``in 10 minutes``) is anchored at the time it is made, read from it."""
    monkeypatch.setattr(SystemClock, "time", staticmethod(lambda: NOW.timestamp()))
    return NOW
