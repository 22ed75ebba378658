"""Real kernels for the kill matrix: start one, run cells, start a process job in it.

Kept free of pytest so that the "launcher" subprocess (the process that starts the kernel and
is then SIGKILLed, like a dying Jupyter server) can use it too.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jupyter_client.manager import KernelManager

#: Cell that starts a process job whose body starts a grandchild and then sleeps; the pids
#: land in ``pidfile``. The job function is defined in the cell (it travels by value).
JOB_CELL_DIRECT = """
import os, subprocess, time
from nbsched import _exits as _lifecycle
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor

_lifecycle.install_kernel_hooks(get_ipython().kernel)
_reports = []
_ex = ProcessJobExecutor(2)
_ex.start(SystemClock(), lambda r: None, lambda *a: _reports.append(a[1].value))

def tree(pidfile):
    child = subprocess.Popen(["sleep", "600"])
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(600)

_ex.submit(RunRequest("r1", "tree", tree, "", ({pidfile!r},), {{}}, time.time(), None, 0, None))
"""

#: The same through the kernel extension: ``%load_ext nbsched`` and ``%schedule add ...
#: --executor process``; the job first fires one second later.
JOB_CELL_EXTENSION = """
import os, subprocess, time

def tree(pidfile):
    child = subprocess.Popen(["sleep", "600"])
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(600)

%load_ext nbsched
%schedule add tree --every 1s --executor process -p pidfile={pidfile}
"""

#: Prints the run statuses of the job that are not "skipped" (max_instances=1 skips the
#: fires that come while it runs), and the pids of the pool's workers.
STATE_CELL = {
    "executor": "print(_reports or ['running'], _ex.worker_pids())",
    "extension": (
        "from nbsched import kernel as _k\n"
        "_s = _k.current()\n"
        "print([r.status.value for r in _s.get_runs('tree') if r.status.value != 'skipped'],"
        " _s._engine.executor('process').worker_pids())"
    ),
}
JOB_CELLS = {"executor": JOB_CELL_DIRECT, "extension": JOB_CELL_EXTENSION}


@dataclass
class CellResult:
    status: str
    stdout: str
    error: str


def start_kernel(cwd: str, env: dict[str, str] | None = None) -> tuple[KernelManager, Any]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=cwd, env=env if env is not None else dict(os.environ))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run_cell(kc: Any, code: str, timeout: float = 60) -> CellResult:
    """Execute ``code`` and collect its stdout until the kernel is idle again."""
    msg_id = kc.execute(code)
    return collect(kc, msg_id, timeout)


def _cell_messages(kc: Any, msg_id: str, timeout: float, what: str) -> Iterator[dict[str, Any]]:
    """The iopub messages of cell ``msg_id`` as they arrive; ``TimeoutError`` naming ``what``
    once ``timeout`` seconds have passed without the caller stopping."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what} within {timeout} s")
        try:
            msg = kc.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            yield msg


def collect(kc: Any, msg_id: str, timeout: float = 60) -> CellResult:
    out, err = [], ""
    for msg in _cell_messages(kc, msg_id, timeout, "no idle status"):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            err = f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            return CellResult("error" if err else "ok", "".join(out), err)
    raise AssertionError("unreachable")  # _cell_messages ends only by raising


def thread_signals(pid: int) -> str:
    """Each thread of process ``pid`` with its state, where it waits and its blocked and
    pending signal masks (``/proc``; Linux): what a failed interrupt test needs to say."""
    found = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as exc:
        return f"({exc})"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/status") as f:
                status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
            with open(f"{base}/wchan") as f:
                wchan = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        fields = ("Name", "State", "SigBlk", "SigPnd", "ShdPnd")
        found.append(" ".join(status.get(k, "?").strip() for k in fields) + f" {wchan}")
    return "; ".join(found)

