"""The cells of the kill matrix: start a process job (a worker with a grandchild) in a real
kernel, and print its state. Kernels come from ``tests.helpers.kernels``.

Kept free of pytest so that the "launcher" subprocess (the process that starts the kernel and
is then SIGKILLed, like a dying Jupyter server) can use it too.
"""

from __future__ import annotations

#: Cell that starts a process job whose body starts a grandchild and then sleeps; the pids
#: land in ``pidfile``. The job function is defined in the cell (it travels by value).
JOB_CELL_DIRECT = """
import os, subprocess, time
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor
from nbsched.kernel.hooks import install_kernel_hooks

install_kernel_hooks(get_ipython().kernel)
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
