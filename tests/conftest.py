"""Fixtures shared by every test directory (helpers live in ``tests/helpers``).

Directory-specific fixtures live in that directory's own conftest.py (tests/triggers/,
tests/stores/, tests/kernel/, tests/process/, ...).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsched import Scheduler
from nbsched.testing import FakeClock
from tests.helpers.env import isolated_dirs
from tests.helpers.kernels import Kernels


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sched(clock: FakeClock) -> Iterator[Scheduler]:
    """A started in-memory scheduler driven by a fake clock, in UTC."""
    s = Scheduler(clock=clock, timezone="UTC", max_workers=4)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """No nbsched-* thread may outlive the test that started it (IPython's conftest lesson)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("nbsched-") and t.ident not in before and t.is_alive()
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads leaked by this test: {leaked}"


@pytest.fixture(autouse=True)
def jupyter_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME, JUPYTER_* and IPYTHONDIR at a temporary directory so that the user's own
    configuration and stores never leak into tests (the layout kernels get too)."""
    root = tmp_path_factory.mktemp("home")
    for var, value in isolated_dirs(root).items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("NBSCHED_DB_URL", raising=False)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return root


@pytest.fixture(scope="module")
def kernel_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernels]:
    """Start real kernels (``kernel_factory.start("ipk7", notebook=..., root=..., env=...)``,
    see ``tests.helpers.kernels``); every one still running is shut down at module end."""
    kernels = Kernels(tmp_path_factory.mktemp("kernels"))
    try:
        yield kernels
    finally:
        errors = kernels.close()
        assert not errors, errors
