"""Memory per job in the in-memory store.

RSS (psutil, after ``gc.collect()``) of a started scheduler with an empty memory store (one
job added and removed first, to warm code paths), then after adding N interval jobs (every
1 h, first run in 1 h) to it. bytes_per_job = (rss_full - rss_empty) / N.

Usage: python bench_memory.py --lib aps3|nbsched [--n 100000]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=100000)
    a = ap.parse_args()
    c.quiet_logs()
    start = c.utc_dt(time.time() + 3600)
    if a.lib == "aps3":
        from apscheduler.triggers.interval import IntervalTrigger as ApsInterval

        sched = c.aps3_scheduler("memory")
        sched.start()

        def add(name: str) -> None:
            sched.add_job(c.noop, ApsInterval(hours=1, start_date=start, timezone="UTC"), id=name)
    else:
        from nbsched import IntervalTrigger

        sched = c.nbsched_scheduler("memory")
        sched.start()

        def add(name: str) -> None:
            sched.add_job(c.noop, IntervalTrigger(3600, start=start), name=name)

    add("warm")
    sched.remove_job("warm")
    r0 = c.rss_bytes()
    t = time.perf_counter()
    for i in range(a.n):
        add(str(i))
    add_s = time.perf_counter() - t
    time.sleep(0.5)  # let nbsched's writer apply the batched next-run times
    r1 = c.rss_bytes()
    jobs = len(sched.get_jobs())
    sched.shutdown(wait=False)
    c.emit(
        "memory",
        a.lib,
        {"n": a.n, "store": "memory"},
        {
            "rss_empty_mib": round(r0 / 2**20, 1),
            "rss_full_mib": round(r1 / 2**20, 1),
            "bytes_per_job": round((r1 - r0) / a.n),
            "jobs": jobs,
            "add_s": round(add_s, 2),
        },
    )


if __name__ == "__main__":
    main()
