"""Outside a kernel: a plain program runs a 30 s process job that has a grandchild, then
ends -- ``sys.exit(88)``, SIGTERM or SIGKILL. It must end the way it asked to (code 88,
killed by the signal) and leave no job process behind.

The program is a real script file without an ``if __name__ == "__main__"`` guard: workers
must not re-run it (multiprocessing's spawn and forkserver children normally would).
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.processes import kill_marked, read_pids, wait_dead, wait_no_marked

pytestmark = pytest.mark.slow

COMMON = """
import os, subprocess, sys, threading, time
print(f"top level ran in {os.getpid()}", flush=True)
PIDFILE, MODE = sys.argv[1], sys.argv[2]

def tree(pidfile):
    child = subprocess.Popen(["sleep", "30"])
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(30)
"""

DRIVERS = {
    "executor": """
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor
ex = ProcessJobExecutor(2)
ex.start(SystemClock(), lambda r: None, lambda *a: None)
ex.submit(RunRequest("r1", "tree", tree, "", (PIDFILE,), {}, time.time(), None, 0, None))
""",
    "scheduler": """
from nbsched import Scheduler
s = Scheduler(timezone="UTC")
s.start()
s.add_job(tree, "every 1h", name="tree", executor="process", args=(PIDFILE,))
threading.Thread(target=s.run_job, args=("tree",), daemon=True).start()
""",
}

ENDING = """
while not os.path.exists(PIDFILE):
    time.sleep(0.01)
print("job running", flush=True)
if MODE == "exit":
    sys.exit(88)
time.sleep(600)  # until the test signals us
"""


@pytest.mark.parametrize("how", ["exit", "sigterm", "sigkill"])
@pytest.mark.parametrize("driver", ["executor", "scheduler"])
def test_program_ends_and_leaves_no_job_process(driver: str, how: str, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(COMMON + DRIVERS[driver] + ENDING))
    pidfile = tmp_path / "pids"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pidfile), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        head = ""
        while "job running" not in head:  # bounded: select() waits at most 60 s per line
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else ""
            assert line, f"the program did not start its job: {head!r}"
            head += line
        worker, grandchild = read_pids(pidfile)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif how == "sigkill":
            proc.kill()
        # Bounded far below the job's 30 s: the program must not wait for its job.
        out, err = proc.communicate(timeout=15)
        expected = {"exit": 88, "sigterm": -signal.SIGTERM, "sigkill": -signal.SIGKILL}[how]
        assert proc.returncode == expected, err
        out = head + out
        assert out.count("top level ran") == 1, out  # no worker re-ran the program
        if how != "sigkill":
            assert "Traceback" not in err, err
        wait_no_marked(proc.pid, timeout=10)  # worker, grandchild, forkserver, reaper, ...
        wait_dead([worker, grandchild], timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_marked(proc.pid)
