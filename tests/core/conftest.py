"""Fixtures of the core tests (the fake-clock ``sched`` is the root conftest's)."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'jobs.db'}"
