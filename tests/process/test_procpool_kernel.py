"""The kill matrix: a real kernel runs a process job that has a grandchild;
however the kernel ends, no process of that job survives. Notebook interrupts leave it alone.

The job is started the way users do it, ``%load_ext nbsched`` and ``%schedule add ...
--executor process`` ("extension"). Two scenarios also run with the executor used directly
in a cell ("executor"): its own exit hook and the reaper suffice without the kernel layer.

Job processes are found by the ``NBSCHED_WORKER=<kernel pid>`` marker (and the reaper by
``NBSCHED_REAPER``); every wait is bounded, and teardown kills whatever a failure left behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers.kernels import Kernels
from tests.helpers.processes import (
    alive,
    kill_marked,
    marked,
    read_pids,
    thread_signals,
    wait_dead,
    wait_no_marked,
)
from tests.helpers.wait import wait_for

from ._kernels import JOB_CELLS, STATE_CELL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class Kernel:
    """One kernel with a running process job (worker + grandchild)."""

    def __init__(self, kernels: Kernels, tmp_path: Path, driver: str) -> None:
        self.driver = driver
        self.h = kernels.start("ipk7", root=tmp_path, notebook="kill-matrix.ipynb")
        # taken now: after a restart the harness answers for the new kernel process
        self.pid = self.h.pid
        self.popen = self.h.process
        pidfile = str(tmp_path / "pids")
        self.h.run(JOB_CELLS[driver].format(pidfile=pidfile))
        self.worker, self.grandchild = read_pids(pidfile)
        found = {p.pid for p in marked(self.pid)}
        assert {self.worker, self.grandchild} <= found, (found, self.worker, self.grandchild)

    def close(self) -> None:
        try:
            self.h.shutdown(now=True)  # whatever the test left of it
        finally:
            kill_marked(self.pid)


@pytest.fixture
def kernel(
    request: pytest.FixtureRequest, kernel_factory: Kernels, tmp_path: Path
) -> Iterator[Kernel]:
    k = Kernel(kernel_factory, tmp_path, getattr(request, "param", "extension"))
    try:
        yield k
    finally:
        k.close()


def _end(k: Kernel, how: str) -> None:
    if how == "shutdown":
        k.h.km.shutdown_kernel(now=False)
    elif how == "restart":
        k.h.km.restart_kernel(now=False)
    elif how == "shutdown_now":
        k.h.km.shutdown_kernel(now=True)
    elif how == "sigkill":
        os.kill(k.pid, signal.SIGKILL)
    elif how == "sigterm":
        os.kill(k.pid, signal.SIGTERM)
    elif how == "exit_cell":
        k.h.send("exit()")
    else:  # pragma: no cover
        raise ValueError(how)


MATRIX = [
    *[
        ("extension", how)
        for how in ("shutdown", "restart", "shutdown_now", "sigkill", "sigterm", "exit_cell")
    ],
    ("executor", "shutdown"),
    ("executor", "sigkill"),
]


@pytest.mark.parametrize(("kernel", "how"), MATRIX, indirect=["kernel"])
def test_no_job_process_survives_the_kernel(how: str, kernel: Kernel) -> None:
    _end(kernel, how)
    wait_dead([kernel.pid], timeout=15)
    wait_no_marked(kernel.pid, timeout=15)  # workers, grandchild, forkserver, tracker, reaper
    wait_dead([kernel.worker, kernel.grandchild], timeout=1)
    if how in ("shutdown", "restart"):
        # The kernel exited by itself: our do_shutdown hook left ipykernel's child sweep
        # nothing to stall on (no zombie, no SIGTERM-ignoring resource tracker), so
        # jupyter_client never had to SIGTERM it.
        kernel.popen.wait(timeout=5)
        assert kernel.popen.returncode == 0
    if how == "sigterm":
        # Our handler cleaned up, then let the signal kill the kernel (no sys.exit()).
        kernel.popen.wait(timeout=5)
        assert kernel.popen.returncode == -signal.SIGTERM


def test_interrupt_does_not_stop_a_process_job(kernel: Kernel, tmp_path: Path) -> None:
    # The cell says it runs through a file, not through its output, and then sleeps in short
    # steps, as a notebook's long loops do. Linux may hand the group's SIGINT to another
    # thread than the main one (whichever unblocks it first, e.g. a thread that just created
    # a thread or a process); CPython then only sets a flag that the main thread checks
    # between two bytecodes, so one long time.sleep() would hide the interrupt until it
    # returns (measured here: about one time in three with two threads starting threads in
    # a loop). The cell would run far longer than we wait: an interrupt that did not work
    # cannot pass for the cell's own end.
    started = tmp_path / "cell-started"
    msg_id = kernel.h.send(
        f"import time\nopen({str(started)!r}, 'w').close()\n"
        "for _ in range(6000):\n    time.sleep(0.1)"
    )
    wait_for(started.exists, 30, "the cell to start")  # the cell really runs: not before it
    kernel.h.km.interrupt_kernel()  # killpg(SIGINT) of the kernel's process group
    try:
        res = kernel.h.collect(msg_id, timeout=30)
    except TimeoutError:
        raise AssertionError(
            "the interrupted cell did not end within 30 s; the kernel's threads: "
            + thread_signals(kernel.pid)
        ) from None
    assert "KeyboardInterrupt" in res.error  # the cell was interrupted ...
    assert alive(psutil.Process(kernel.worker)) and alive(psutil.Process(kernel.grandchild))
    res = kernel.h.run(STATE_CELL[kernel.driver])
    assert res.stdout.strip() == f"['running'] [{kernel.worker}]"  # ... the job was not
    kernel.h.km.shutdown_kernel(now=False)
    wait_no_marked(kernel.pid, timeout=15)


LAUNCHER = """
import json, sys, time
from pathlib import Path
from tests.helpers.kernels import Kernels
from tests.process._kernels import JOB_CELL_EXTENSION
k = Kernels().start("ipk7", root=Path(sys.argv[1]))
res = k.run(JOB_CELL_EXTENSION.format(pidfile=sys.argv[2]), check=False)
print(json.dumps({"kernel": k.pid, "status": res.status, "error": res.error}))
sys.stdout.flush()
time.sleep(600)
"""


def test_no_job_process_survives_the_death_of_the_kernels_launcher(tmp_path: Path) -> None:
    """The Jupyter server dies: the kernel's parent poller calls os._exit(1), which runs no
    Python hook at all; the reaper must do everything."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    pidfile = tmp_path / "pids"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path), str(pidfile)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    kernel_pid = None
    try:
        assert launcher.stdout is not None
        ready, _, _ = select.select([launcher.stdout], [], [], 120)
        assert ready, "the launcher did not start its kernel"
        info = json.loads(launcher.stdout.readline())
        assert info["status"] == "ok", info
        kernel_pid = info["kernel"]
        worker, grandchild = read_pids(pidfile)
        launcher.kill()
        launcher.wait(timeout=5)
        wait_dead([kernel_pid], timeout=15)
        wait_no_marked(kernel_pid, timeout=15)
        wait_dead([worker, grandchild], timeout=1)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if launcher.stdout is not None:
            launcher.stdout.close()
        if kernel_pid is not None:
            try:
                psutil.Process(kernel_pid).kill()
            except psutil.Error:
                pass
            kill_marked(kernel_pid)
