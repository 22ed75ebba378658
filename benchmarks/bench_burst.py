"""Burst throughput: N one-shot date jobs all due at the same instant T.

The jobs are added to a *started* scheduler; T is placed far enough ahead that adding
finishes before T (a pilot of 200 adds into a throwaway scheduler of the same kind estimates
the add rate). Every body appends its start time. Throughput = bodies run / (last body
start - T); "first" is the first body start after T. Misfire grace is ``None`` on both sides
by default (every job runs however late: the anchor's throughput setting); ``--grace 1``
shows how many APScheduler drops with its default.

Store: ``memory``, or ``sqlite`` (a fresh file in /tmp; APScheduler's SQLAlchemyJobStore
with SQLAlchemy defaults, nbsched's SQLAlchemy store with its own settings).

Usage: python bench_burst.py --lib aps3|nbsched --store memory|sqlite [--n 10000]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def _add_aps3(sched: Any, n: int, when: float, prefix: str = "") -> None:
    run_date = c.utc_dt(when)
    for i in range(n):
        sched.add_job(c.record_start, "date", run_date=run_date, id=f"{prefix}{i}")


def _add_nbsched(sched: Any, n: int, when: float, grace: float | None, prefix: str = "") -> None:
    from nbsched import DateTrigger

    run_date = c.utc_dt(when)
    for i in range(n):
        sched.add_job(
            c.record_start, DateTrigger(run_date), name=f"{prefix}d{i}", misfire_grace_time=grace
        )


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--grace", default="none", help="misfire_grace_time seconds or 'none'")
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    c.quiet_logs()
    grace = None if a.grace == "none" else float(a.grace)
    path, pilot_path = c.db_path("burst"), c.db_path("burst_pilot")
    missed: list[int] = []
    c.rm_db(path)
    c.rm_db(pilot_path)

    if a.lib == "aps3":
        from apscheduler.events import EVENT_JOB_MISSED

        pilot = c.aps3_scheduler(a.store, pilot_path, a.workers, grace)
        pilot.start()
        t = time.perf_counter()
        _add_aps3(pilot, 200, time.time() + 86400)
        rate = 200 / (time.perf_counter() - t)
        pilot.shutdown(wait=False)
        sched = c.aps3_scheduler(a.store, path, a.workers, grace)
        sched.add_listener(lambda ev: missed.append(1), EVENT_JOB_MISSED)

        def add(when: float) -> None:
            _add_aps3(sched, a.n, when)
    else:
        from nbsched import RunFinished, RunStatus

        pilot = c.nbsched_scheduler(a.store, pilot_path, a.workers)
        pilot.start()
        t = time.perf_counter()
        _add_nbsched(pilot, 200, time.time() + 86400, grace)
        rate = 200 / (time.perf_counter() - t)
        pilot.shutdown(wait=False)
        sched = c.nbsched_scheduler(a.store, path, a.workers)

        def listener(ev: Any) -> None:
            if type(ev) is RunFinished and ev.run.status in (RunStatus.missed, RunStatus.skipped):
                missed.append(1)

        sched.add_listener(listener, RunFinished)  # as the aps3 side: one event type

        def add(when: float) -> None:
            _add_nbsched(sched, a.n, when, grace)

    c.rm_db(pilot_path)
    sched.start()
    T = time.time() + 1.0 + 1.5 * a.n / rate
    t = time.perf_counter()
    add(T)
    add_s = time.perf_counter() - t
    margin = T - time.time()
    if margin < 0.1:
        c.log(f"WARNING: adding overran T by {-margin:.3f} s")
    c.sleep_until(T)
    cpu0 = c.process_cpu()
    done = c.STARTS
    finished = c.wait_until(lambda: len(done) + len(missed) >= a.n, a.timeout, 0.05)
    cpu = c.process_cpu() - cpu0
    t_all = time.time() - T
    sched.shutdown(wait=True)
    c.rm_db(path)

    span = (max(done) - T) if done else float("nan")
    c.emit(
        "burst",
        a.lib,
        {"store": a.store, "n": a.n, "misfire_grace_time": grace, "workers": a.workers},
        {
            "ran": len(done),
            "missed_or_skipped_recorded": len(missed),
            "silent": a.n - len(done) - len(missed),
            "finished": finished,
            "all_done_s": round(span, 4),
            "accounted_s": round(t_all, 3),
            "throughput_jobs_per_s": round(len(done) / span, 1) if done else 0,
            "first_start_ms": round(1000 * (min(done) - T), 3) if done else None,
            "lateness_ms": c.dist_ms(x - T for x in done),
            "cpu_s": round(cpu, 3),
            "add_s": round(add_s, 3),
            "pilot_add_rate": round(rate, 1),
            "start_margin_s": round(margin, 3),
        },
    )


if __name__ == "__main__":
    main()
