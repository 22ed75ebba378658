"""Scheduler-thread cost per due job: N aligned 1 s interval jobs for ``--duration`` s.

The scenario is the lateness benchmark's (``bench_lateness.py``: real thread pool of 10,
trivial body, memory store). Two figures per side:

* ``loop_cpu_us_per_run`` (the target's figure): CPU time of the scheduler's own thread --
  ``APScheduler`` / ``nbsched-loop``, read through its per-thread CPU clock
  (``pthread_getcpuclockid``) -- over the run window, divided by the runs it dispatched
  (bodies that ran). Time spent waiting for the GIL is not CPU time, so this is the work the
  thread itself does.
* ``pass_wall_us_per_job``: wall time of each dispatch pass (APScheduler ``_process_jobs``,
  nbsched ``Loop._dispatch_due`` of its engine) divided by the jobs it handed out -- the anchor's
  method (perf-baselines.md 1b); includes GIL waits behind the workers.

Grace: aps3 1 s (its default, as in the anchor), nbsched none.

Usage: python bench_dispatch_cost.py --lib aps3|nbsched [--n 10000] [--duration 5]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402
import bench_lateness as lat  # noqa: E402


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--grace", default=None, help="seconds or 'none' (default: see docstring)")
    ap.add_argument("--workers", type=int, default=10)
    a = ap.parse_args()
    c.quiet_logs()
    grace = lat._grace(a.grace, a.lib)
    run = lat.run_aps3 if a.lib == "aps3" else lat.run_nbsched
    res = run(a.n, a.duration, grace, a.workers, time_passes=True)
    keep = (
        "expected_runs",
        "ran",
        "missed_recorded",
        "silent",
        "loop_cpu_s",
        "loop_cpu_us_per_run",
        "loop_cpu_us_per_fire_time",
        "cpu_util_pct",
        "passes_with_work",
        "pass_ms",
        "pass_jobs",
        "pass_wall_us_per_job",
        "lateness_ms",
    )
    c.emit(
        "dispatch_cost",
        a.lib,
        {
            "n": a.n,
            "duration_s": a.duration,
            "workers": a.workers,
            "misfire_grace_time": grace,
            "store": "memory",
        },
        {k: res.get(k) for k in keep},
    )


if __name__ == "__main__":
    main()
