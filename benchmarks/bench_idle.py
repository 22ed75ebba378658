"""Idle cost: CPU used by a started scheduler holding N jobs whose next run is 1 h away.

After a settle of 2 s, user + system CPU seconds of the whole process (every thread; the
process CPU clock, nanosecond resolution -- the anchor's psutil figure counts 10 ms ticks) and
the voluntary context switches of all its threads (a proxy for wake-ups) are measured over
``--seconds`` of wall time. The main thread only sleeps (its one wake-up is subtracted), so
everything counted is the scheduler's (plus interpreter noise). The scheduler's own thread
(``APScheduler`` / ``nbsched-loop``) is reported separately, and so is every other thread that
used CPU.

Usage: python bench_idle.py --lib aps3|nbsched [--n 10000] [--seconds 30] [--store memory]
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    a = ap.parse_args()
    c.quiet_logs()
    path = c.db_path("idle")
    c.rm_db(path)
    start = c.utc_dt(time.time() + 3600)
    if a.lib == "aps3":
        from apscheduler.triggers.interval import IntervalTrigger as ApsInterval

        sched = c.aps3_scheduler(a.store, path)
        sched.start()
        for i in range(a.n):
            sched.add_job(c.noop, ApsInterval(hours=1, start_date=start, timezone="UTC"), id=str(i))
        loop_name = "APScheduler"
    else:
        from nbsched import IntervalTrigger

        sched = c.nbsched_scheduler(a.store, path)
        sched.start()  # nbsched's SQL store is opened by start(); add_job before it fails
        for i in range(a.n):
            sched.add_job(c.noop, IntervalTrigger(3600, start=start), name=str(i))
        loop_name = "nbsched-loop"
    time.sleep(2)
    loop = c.ThreadCPU(c.find_thread(loop_name))  # type: ignore[arg-type]
    others = {
        t.name: c.ThreadCPU(t) for t in threading.enumerate() if t is not threading.current_thread()
    }
    cpu0, ctx0, loop0 = c.process_cpu(), c.voluntary_ctx_switches(), loop.seconds()
    other0 = {k: v.seconds() for k, v in others.items()}
    t0 = time.perf_counter()
    time.sleep(a.seconds)
    wall = time.perf_counter() - t0
    cpu, ctx1, loop_cpu = c.process_cpu() - cpu0, c.voluntary_ctx_switches(), loop.seconds() - loop0
    per_thread = {k: round(v.seconds() - other0[k], 4) for k, v in others.items()}
    threads = len(os.listdir("/proc/self/task"))
    sched.shutdown(wait=False)
    c.rm_db(path)
    c.emit(
        "idle",
        a.lib,
        {"n": a.n, "seconds": a.seconds, "store": a.store},
        {
            "cpu_s": round(cpu, 4),
            "cpu_pct": round(100 * cpu / wall, 4),
            "loop_cpu_s": round(loop_cpu, 4),
            "thread_cpu_s": {k: v for k, v in per_thread.items() if v > 0},
            "vol_ctx_switches": ctx1 - ctx0 - 1,  # minus the main thread's own sleep
            "threads": threads,
        },
    )


if __name__ == "__main__":
    main()
