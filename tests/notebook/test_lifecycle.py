"""A notebook's kernel, and what it started, never outlive the program running the job,
however the program ends (the death matrix)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers.processes import pid_alive
from tests.helpers.wait import wait_for

from .conftest import wait_gone

PROGRAM = Path(__file__).with_name("_program.py")


@pytest.mark.slow
@pytest.mark.parametrize("end", ["sigkill", "sigterm", "exit"])
def test_no_kernel_or_grandchild_outlives_the_program(nbs: Path, tmp_path: Path, end: str) -> None:
    pidfile = tmp_path / "pids"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.Popen(
        [sys.executable, str(PROGRAM), str(nbs / "sleeps.ipynb"), str(pidfile),
         str(tmp_path / "runs"), "exit" if end == "exit" else "wait"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(pidfile.exists, 90, "the notebook to start its child")
        kernel, child = map(int, pidfile.read_text().split())
        assert "ipykernel" in " ".join(psutil.Process(kernel).cmdline())
        assert psutil.Process(child).ppid() == kernel and pid_alive(child)
        if end == "sigkill":
            proc.send_signal(signal.SIGKILL)
        elif end == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:  # (only now: exiting at once, it could kill them before the lines above)
            Path(f"{pidfile}.go").touch()
        proc.wait(30)
        wait_gone([kernel, child], 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
