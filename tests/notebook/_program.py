"""A program that runs a notebook job through a Scheduler and then ends as it is told
(``test_lifecycle.py``): ``exit`` (a normal exit with the run in flight, once the test has
seen the kernel and its child: it creates ``PIDFILE.go``), or ``wait`` for the test's signal.
Arguments: NOTEBOOK PIDFILE OUTPUT_DIR MODE."""

from __future__ import annotations

import os
import sys
import threading
import time

from nbsched import Scheduler
from nbsched.executors.notebook import NotebookJobExecutor


def main() -> None:
    notebook, pidfile, output_dir, mode = sys.argv[1:5]
    s = Scheduler(
        timezone="UTC", executors={"notebook": NotebookJobExecutor(output_dir=output_dir)}
    )
    s.start()
    s.add_job(notebook, "every 1h", name="sleeper", parameters={"pidfile": pidfile})
    threading.Thread(target=lambda: s.run_job("sleeper"), daemon=True).start()
    deadline = time.monotonic() + 120
    while not os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.02)
    if mode == "exit":
        while not os.path.exists(pidfile + ".go") and time.monotonic() < deadline:
            time.sleep(0.02)
        sys.exit(0)  # no shutdown() call: the exit hooks must clean up
    threading.Event().wait()  # until the test's signal


if __name__ == "__main__":
    main()
