"""Fixtures for notebook runs: the test notebooks (copied to a temporary folder, so runs
write nothing into the repository) and process-table checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest

from tests.helpers.processes import pid_alive
from tests.helpers.wait import wait_for

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def nbs(tmp_path: Path) -> Path:
    """A folder with a copy of every test notebook."""
    folder = tmp_path / "nbs"
    shutil.copytree(NOTEBOOKS, folder)
    return folder


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait (bounded) until none of ``pids`` runs any more."""
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout, f"processes {pids} to end")


def reapers() -> list[int]:
    """Live reaper processes of this process (the ``NBSCHED_REAPER`` mark)."""
    me = str(os.getpid())
    return [
        p.pid
        for p in psutil.process_iter(["environ"])
        if (p.info.get("environ") or {}).get("NBSCHED_REAPER") == me and pid_alive(p.pid)
    ]


def pids_from(text: str) -> list[int]:
    """The kernel's pid and its child's, from the ``pids K C`` line ``sleeps.ipynb`` prints."""
    for line in text.splitlines():
        if line.startswith("pids "):
            return [int(p) for p in line.split()[1:]]
    return []
