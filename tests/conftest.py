"""Fixtures shared by every test directory.

Directory-specific fixtures live in that directory's own conftest.py (tests/triggers/,
tests/stores/, tests/kernel/, tests/process/, ...).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbsched.testing import FakeClock


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait, with a bound, until ``predicate()`` is true (a condition, not a hopeful sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.005)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
    configuration and stores never leak into tests (jupyter_server's jp_environ idea)."""
    root = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("HOME", ""),
        ("JUPYTER_CONFIG_DIR", "jupyter_config"),
        ("JUPYTER_DATA_DIR", "jupyter_data"),
        ("JUPYTER_RUNTIME_DIR", "jupyter_runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        path = root / sub if sub else root
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("NBSCHED_DB_URL", raising=False)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return root
