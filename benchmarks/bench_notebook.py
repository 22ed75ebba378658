"""On-time notebook runs: nbsched vs papermill, side by side in one invocation.

A one-cell notebook prints the time its first cell starts and the time its kernel process was
created. Each sample:

* **nbsched**: a notebook job with a date trigger at T (``--ahead`` seconds from now); the
  notebook executor is handed the run ``lead`` seconds early, starts the kernel then, and the
  first cell waits for T;
* **papermill**: ``papermill.execute_notebook`` called at T (what a cron line or a scheduler
  calling papermill does).

Lateness = first cell start - T. The kernel start nbsched hides is T - the kernel's creation
time (its kernel was ready before T). The samples alternate (nbsched, papermill, nbsched, ...)
so that both see the same machine load. One JSON line on stdout (``lib``:
``nbsched-vs-papermill``); a summary with the ratios on stderr.

Usage: python bench_notebook.py [--runs 10] [--ahead 6] [--lead 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

# The kernel's creation time from /proc (10 ms ticks since boot; psutil's create_time adds
# a boot time rounded to the second)
CELL = """import os, time
ticks = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19])
age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf('SC_CLK_TCK')
now = time.time()
print(repr(now), repr(now - age))"""


def _notebook(folder: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = folder / "first_cell.ipynb"
    nb = new_notebook(
        cells=[new_code_cell(CELL)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)
    return path


def _parse(text: str) -> tuple[float, float]:
    first, created = map(float, text.split())
    return first, created


def nbsched_sample(sched: object, path: Path, t: float, name: str) -> tuple[float, float]:
    from nbsched import RunFinished
    from nbsched.triggers import DateTrigger

    done = threading.Event()
    runs: list[object] = []

    def on_finished(event: object) -> None:
        if event.job_name == name:  # type: ignore[attr-defined]
            runs.append(event.run)  # type: ignore[attr-defined]
            done.set()

    remove = sched.add_listener(on_finished, RunFinished)  # type: ignore[attr-defined]
    sched.add_job(str(path), DateTrigger(c.utc_dt(t)), name=name)  # type: ignore[attr-defined]
    if not done.wait(t - time.time() + 120):
        raise SystemExit(f"nbsched run {name} did not finish")
    remove()
    run = runs[0]
    if run.status != "succeeded":  # type: ignore[attr-defined]
        raise SystemExit(f"nbsched run failed: {run.error}")  # type: ignore[attr-defined]
    return _parse(run.output)  # type: ignore[attr-defined]


def papermill_sample(path: Path, out: Path, t: float) -> tuple[float, float]:
    import nbformat
    import papermill

    c.sleep_until(t)
    papermill.execute_notebook(str(path), str(out), progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    return _parse("".join(o.get("text", "") for o in nb.cells[0].outputs))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--ahead", type=float, default=6.0, help="T is this many seconds away")
    ap.add_argument("--lead", type=float, default=5.0, help="the notebook executor's lead")
    a = ap.parse_args()
    c.quiet_logs()
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    from nbsched import Scheduler
    from nbsched.executors.notebook import NotebookJobExecutor

    with tempfile.TemporaryDirectory(prefix="nbsched_bench_nb_", dir=c.SCRATCH) as tmp:
        folder = Path(tmp)
        path = _notebook(folder)
        sched = Scheduler(
            timezone="UTC",
            executors={"notebook": NotebookJobExecutor(output_dir=folder / "runs", lead=a.lead)},
        )
        sched.start()
        late: dict[str, list[float]] = {"nbsched": [], "papermill": []}
        hidden: list[float] = []
        pm_start: list[float] = []
        try:
            for i in range(a.runs):
                t = time.time() + a.ahead
                first, created = nbsched_sample(sched, path, t, f"nb{i}")
                late["nbsched"].append(first - t)
                hidden.append(t - created)
                t = time.time() + 1.0
                first, created = papermill_sample(path, folder / f"pm{i}.ipynb", t)
                late["papermill"].append(first - t)
                pm_start.append(created - t)
                c.log(f"run {i}: nbsched {1000 * late['nbsched'][-1]:.1f} ms, "
                      f"papermill {1000 * late['papermill'][-1]:.1f} ms")
        finally:
            sched.shutdown()
    nb, pm = c.dist_ms(late["nbsched"]), c.dist_ms(late["papermill"])
    ratios = {k: round(pm[k] / nb[k], 1) for k in ("p50", "p99") if nb.get(k)}
    c.emit(
        "notebook",
        "nbsched-vs-papermill",
        {"runs": a.runs, "ahead_s": a.ahead, "lead_s": a.lead},
        {
            "first_cell_late_nbsched": nb,
            "first_cell_late_papermill": pm,
            "kernel_started_before_T_nbsched": c.dist_ms(hidden),
            "kernel_created_after_T_papermill": c.dist_ms(pm_start),
            "papermill_over_nbsched": ratios,
        },
    )
    c.log(
        f"first cell late, p50/p99: nbsched {nb['p50']}/{nb['p99']} ms, papermill "
        f"{pm['p50']}/{pm['p99']} ms; papermill/nbsched {ratios.get('p50')}x / "
        f"{ratios.get('p99')}x; kernel start hidden (p50) {c.dist_ms(hidden)['p50']} ms"
    )


if __name__ == "__main__":
    main()
