"""Interrupts right after the first process job: jupyter_client sends SIGINT to the kernel's
whole process group on every interrupt and at the start of every shutdown. The pool's helper
processes (forkserver, resource tracker, reaper, a worker that has not left the group yet)
must not die of it with a ``KeyboardInterrupt`` traceback or a ``Fatal Python error`` in the
server log, and nothing may be left behind.

The race is real, not staged: the SIGINTs come while the forkserver and the first worker
start, which is when a helper is still in the kernel's group with Python's default SIGINT
handler. Each test repeats it several times (a fresh forkserver every round).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.kernels import Kernels
from tests.helpers.processes import kill_marked, wait_dead, wait_no_marked

pytestmark = pytest.mark.slow

NOISE = ("Traceback", "KeyboardInterrupt", "Fatal Python error")

#: A program in its own process group that, like a kernel running a cell, has a Python SIGINT
#: handler (so the helpers it launches start with SIGINT at its default, not ignored). Each
#: round starts a pool and its first job and SIGINTs the whole group every 2 ms for 0.4 s.
PROGRAM = """
import os, signal, sys, threading, time
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor

interrupts = 0

def on_sigint(signum, frame):
    global interrupts
    interrupts += 1

signal.signal(signal.SIGINT, on_sigint)

def job():
    print("ran", flush=True)

statuses = []
for i in range(int(sys.argv[1])):
    done = threading.Event()

    def finished(request, status, output, error, ts):
        statuses.append(f"{status.value}:{output.strip()}:{error}")
        done.set()

    ex = ProcessJobExecutor(1)
    ex.start(SystemClock(), lambda r: None, finished)
    ex.submit(RunRequest(f"r{i}", "job", job, "", (), {}, time.time(), None, 0, None))
    end = time.monotonic() + 0.4
    while time.monotonic() < end:
        os.killpg(0, signal.SIGINT)
        time.sleep(0.002)
    done.wait(20)
    ex.shutdown()
print(f"interrupts={interrupts}", flush=True)
print("\\n".join(statuses), flush=True)
"""


def test_group_sigints_while_the_pool_starts_are_quiet(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(PROGRAM))
    proc = subprocess.Popen(
        [sys.executable, str(script), "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        process_group=0,  # its killpg reaches it and its helpers, not pytest
    )
    try:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        head, *statuses = out.splitlines()
        assert head.startswith("interrupts=") and int(head.split("=")[1]) > 0  # they were sent
        assert statuses == ["succeeded:ran:None"] * 5, out  # and the first jobs ran
        assert not [word for word in NOISE if word in err], err
        wait_no_marked(proc.pid, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_marked(proc.pid)


#: Starts a pool and its first job, and returns once the forkserver has been launched (so it
#: was launched while this cell ran: SIGINT at its default, as when a user's cell starts it).
START_CELL = """
import time
from multiprocessing import forkserver as _fs
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor
_ex = ProcessJobExecutor(1)
_ex.start(SystemClock(), lambda r: None, lambda *a: None)
_ex.submit(RunRequest("r{round}", "job", lambda: time.sleep(0.05), "", (), {{}}, time.time(),
                      None, 0, None))
_end = time.monotonic() + 20
while _fs._forkserver._forkserver_pid is None and time.monotonic() < _end:
    time.sleep(0.001)
"""


def test_kernel_interrupts_and_shutdown_right_after_the_first_job_are_quiet(
    kernel_factory: Kernels, tmp_path: Path
) -> None:
    log = tmp_path / "kernel.log"
    with log.open("w") as stderr:
        k = kernel_factory.start("ipk7", stderr=stderr)
    kernel_pid = k.pid
    try:
        for i in range(4):
            k.run(START_CELL.format(round=i))
            k.km.interrupt_kernel()  # killpg(SIGINT), as the notebook's interrupt button
            k.km.interrupt_kernel()
            k.run("_ex.shutdown()")
        k.run(START_CELL.format(round="last"))
        k.km.shutdown_kernel(now=False)  # begins with killpg(SIGINT) too
        wait_dead([kernel_pid], timeout=15)
        wait_no_marked(kernel_pid, timeout=15)
        text = log.read_text()
        assert not [word for word in NOISE if word in text], text
    finally:
        kill_marked(kernel_pid)
