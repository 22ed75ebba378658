"""Restart over a SQLite store whose N jobs are all overdue.

1. ``build`` (its own process): write N interval jobs into a fresh SQLite file so that every
   job's next run time is already in the past when the store is opened again.

   * nbsched: a scheduler on ``FakeClock(now - 1 h)`` adds jobs every 10 min starting 1 min
     later, then shuts down (writing every next run time). At real time each job has about
     six fire times overdue.
   * aps3: the same jobs, added with ``next_run_time`` = their (past) first fire time to a
     paused scheduler that is never shut down (shutting down a paused 3.x scheduler consumes
     the due runs; see perf-baselines.md, takeaway 9).

2. ``child`` (a fresh process, as after a kernel restart): open the store, ``start()`` with
   the real clock, and time until the backlog is handled per policy: every job ran once
   (coalesce) or was reported missed, and no job of the store is due any more.

Policies: nbsched ``misfire_grace_time=None, coalesce=True`` (every job must run once, the
folded fire times are recorded as one ``missed`` record per job); aps3 its defaults (grace
1 s, coalesce), as in the anchor -- it reports the runs missed and runs none. ``--grace`` sets
the same grace on both instead.

Usage: python bench_restart.py --lib aps3|nbsched [--n 10000]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

HOUR, PERIOD, FIRST = 3600.0, 600.0, 60.0


def _grace(text: str | None, lib: str) -> float | None:
    if text is None:
        return 1.0 if lib == "aps3" else None
    return None if text == "none" else float(text)


def build(lib: str, path: str, n: int, grace: float | None) -> dict[str, Any]:
    c.rm_db(path)
    t = time.perf_counter()
    if lib == "aps3":
        from apscheduler.triggers.interval import IntervalTrigger as ApsInterval

        sched = c.aps3_scheduler("sqlite", path, grace=grace)
        sched.start(paused=True)
        first = c.utc_dt(time.time() - HOUR + FIRST)
        for i in range(n):
            sched.add_job(
                "_common:noop",
                ApsInterval(seconds=PERIOD, start_date=first, timezone="UTC"),
                id=str(i),
                next_run_time=first,
            )
        # deliberately no shutdown (see the module docstring)
    else:
        from nbsched import IntervalTrigger
        from nbsched.testing import FakeClock

        clock = FakeClock(start=time.time() - HOUR)
        sched = c.nbsched_scheduler("sqlite", path, clock=clock)
        sched.start()
        first = c.utc_dt(clock.time() + FIRST)
        for i in range(n):
            sched.add_job(
                "_common:noop",
                IntervalTrigger(PERIOD, start=first),
                name=str(i),
                misfire_grace_time=grace,
                coalesce=True,
            )
        sched.shutdown(wait=True, timeout=30)
    return {"build_s": round(time.perf_counter() - t, 2)}


def child(lib: str, path: str, n: int, timeout: float) -> dict[str, Any]:
    """Runs in a fresh process: open, start, wait for the catch-up."""
    counts = {"ran": 0, "missed": 0, "skipped": 0, "coalesced_records": 0, "other": 0}
    ran_jobs: set[str] = set()
    t_import = time.perf_counter()
    if lib == "aps3":
        import datetime as dt

        from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

        import_s = time.perf_counter() - t_import

        def listener(ev: Any) -> None:
            if ev.code == EVENT_JOB_EXECUTED:
                counts["ran"] += 1
                ran_jobs.add(ev.job_id)
            else:
                counts["missed"] += 1
                ran_jobs.add(ev.job_id)

        sched = c.aps3_scheduler("sqlite", path, grace=json.loads(os.environ["BENCH_GRACE"]))
        sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        store = sched._jobstores  # filled by start()
        t = time.perf_counter()
        sched.start()
        start_s = time.perf_counter() - t

        def caught_up() -> bool:
            nxt = store["default"].get_next_run_time()
            return len(ran_jobs) >= n and (nxt is None or nxt > dt.datetime.now(dt.UTC))
    else:
        from nbsched import RunFinished, RunStatus

        import_s = time.perf_counter() - t_import

        def listener(ev: Any) -> None:
            if type(ev) is not RunFinished:
                return
            run = ev.run
            if run.status is RunStatus.succeeded:
                counts["ran"] += 1
                ran_jobs.add(run.job_name)
            elif run.status is RunStatus.missed:
                if (run.error or "").startswith("Coalesced"):
                    counts["coalesced_records"] += 1
                else:
                    counts["missed"] += 1
                    ran_jobs.add(run.job_name)
            elif run.status is RunStatus.skipped:
                counts["skipped"] += 1
            else:
                counts["other"] += 1

        sched = c.nbsched_scheduler("sqlite", path)
        sched.add_listener(listener)
        t = time.perf_counter()
        sched.start()
        start_s = time.perf_counter() - t

        def caught_up() -> bool:
            if len(ran_jobs) < n:
                return False
            nxt = sched.status()["next_run_time"]
            return nxt is None or nxt.timestamp() > time.time()

    # the cheap in-memory count first: polling the database while the catch-up runs would
    # hold read locks the writer (APScheduler's rollback journal) has to wait for
    ok = c.wait_until(lambda: len(ran_jobs) >= n, timeout, 0.01)
    ok = ok and c.wait_until(caught_up, timeout, 0.01)
    catch_up_s = time.perf_counter() - t
    table = "apscheduler_jobs" if lib == "aps3" else "nbsched_jobs"
    synced = c.wait_until(lambda: _store_min_next(path, table) > time.time(), timeout, 0.05)
    store_synced_s = time.perf_counter() - t
    jobs_loaded = len(sched.get_jobs())
    sched.shutdown(wait=True)
    return {
        "import_s": round(import_s, 4),
        "start_s": round(start_s, 4),
        "catch_up_s": round(catch_up_s, 4),
        "caught_up": ok,
        "store_synced_s": round(store_synced_s, 4) if synced else None,
        "jobs_handled": len(ran_jobs),
        "jobs_loaded": jobs_loaded,
        **counts,
    }


def _store_min_next(path: str, table: str) -> float:
    """The earliest next run time in the file, read with a fresh connection (+inf if none)."""
    import sqlite3

    con = sqlite3.connect(path, timeout=5)
    try:
        v = con.execute(f"SELECT min(next_run_time) FROM {table}").fetchone()[0]
    finally:
        con.close()
    return float("inf") if v is None else float(v)


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--grace", default=None, help="seconds or 'none' (default: see docstring)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--phase", choices=["main", "build", "child"], default="main")
    ap.add_argument("--db")
    a = ap.parse_args()
    c.quiet_logs()
    grace = _grace(a.grace, a.lib)
    if a.phase == "build":
        print(json.dumps(build(a.lib, a.db, a.n, grace)))
        return
    if a.phase == "child":
        print(json.dumps(child(a.lib, a.db, a.n, a.timeout)))
        return

    path = c.db_path("restart")
    me = [
        sys.executable,
        os.path.abspath(__file__),
        "--lib",
        a.lib,
        "--n",
        str(a.n),
        "--db",
        path,
        "--timeout",
        str(a.timeout),
    ]
    if a.grace is not None:
        me += ["--grace", a.grace]
    env = {**os.environ, "BENCH_GRACE": json.dumps(grace)}
    try:
        b = subprocess.run(
            me + ["--phase", "build"], capture_output=True, text=True, check=True, env=env
        )
        built = json.loads(b.stdout.strip().splitlines()[-1])
        time.sleep(1.0)
        r = subprocess.run(
            me + ["--phase", "child"], capture_output=True, text=True, check=True, env=env
        )
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except subprocess.CalledProcessError as exc:
        c.log(exc.stderr)
        raise
    finally:
        c.rm_db(path)
    c.emit(
        "restart",
        a.lib,
        {
            "n": a.n,
            "store": "sqlite",
            "misfire_grace_time": grace,
            "coalesce": True,
            "interval_s": PERIOD,
            "overdue_by_s": HOUR - FIRST,
        },
        {**built, **res},
    )


if __name__ == "__main__":
    main()
