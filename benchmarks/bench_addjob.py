"""Cost of ``add_job`` into a *started* scheduler (jobs/s).

Jobs: an interval trigger of 1 h starting in 1 h, a trivial function, names ``"0".."N-1"``.
Only the ``add_job`` loop is timed. After it, the number of jobs the store holds is checked
(read back from a *new* store object for SQLite, so that a job that only lives in memory
does not count).

Store: ``memory``, or ``sqlite`` (a fresh file in /tmp; APScheduler's SQLAlchemyJobStore with
SQLAlchemy defaults -- rollback journal, one commit per job -- and nbsched's store with its
own settings).

Usage: python bench_addjob.py --lib aps3|nbsched --store sqlite [--n 10000]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--store", choices=["memory", "sqlite"], default="sqlite")
    ap.add_argument("--n", type=int, default=10000)
    a = ap.parse_args()
    c.quiet_logs()
    path = c.db_path("addjob")
    c.rm_db(path)
    start = time.time() + 3600
    stored: int | None
    if a.lib == "aps3":
        from apscheduler.triggers.interval import IntervalTrigger as ApsInterval

        sched = c.aps3_scheduler(a.store, path)
        sched.start()
        start_dt = c.utc_dt(start)
        t = time.perf_counter()
        for i in range(a.n):
            sched.add_job(
                c.noop, ApsInterval(hours=1, start_date=start_dt, timezone="UTC"), id=str(i)
            )
        el = time.perf_counter() - t
        sched.shutdown(wait=False)
        stored = _count(path, "apscheduler_jobs") if a.store == "sqlite" else len(sched.get_jobs())
    else:
        from nbsched import IntervalTrigger

        sched = c.nbsched_scheduler(a.store, path)
        sched.start()
        start_dt = c.utc_dt(start)
        t = time.perf_counter()
        for i in range(a.n):
            sched.add_job(c.noop, IntervalTrigger(3600, start=start_dt), name=str(i))
        el = time.perf_counter() - t
        n_mem = len(sched.get_jobs())
        sched.shutdown(wait=False)
        stored = _count(path, "nbsched_jobs") if a.store == "sqlite" else n_mem
    c.rm_db(path)
    c.emit(
        "addjob",
        a.lib,
        {"store": a.store, "n": a.n, "state": "started"},
        {
            "add_s": round(el, 4),
            "add_rate_jobs_per_s": round(a.n / el, 1),
            "add_us_per_job": round(1e6 * el / a.n, 2),
            "jobs_in_store": stored,
        },
    )


def _count(path: str, table: str) -> int:
    """Rows in ``table`` of the SQLite file, read with a fresh connection."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


if __name__ == "__main__":
    main()
