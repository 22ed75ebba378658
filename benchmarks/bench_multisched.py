"""Several scheduler processes on one store: fires per second, duplicates, losses, and what
claiming a fire costs.

For each count of scheduler processes (``--procs 1,2,3``): fresh tables, ``--jobs`` N jobs
firing every second (body: nothing), that many scheduler processes serving them for
``--seconds``; then the run table is read back. Over the fire times of the measured window
(after ``--warmup`` seconds, before the last second; the schedulers learn of each other
from their beats, every third of the lease: 10 s by default): fires per second recorded, duplicates
(a ``(job, fire time)`` recorded twice: must be 0), losses (a fire time of a job with no
record at all), how the runs were shared out, and the body start lateness (median / p99).

Claim cost: ``JobStore.claim_fires`` for a batch of N uncontended fires, plus the
next-run-time write that releases them, against that write alone, per fire.

Usage: python bench_multisched.py [--store postgres|sqlite] [--jobs 1000] [--seconds 6]
           [--procs 1,2,3] [--warmup 1] [--pg-url URL]
Prints a table on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PG_URL = os.environ.get("NBSCHED_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
OWNER = "bench"

WORKER = """
import signal, sys, threading
sys.path.insert(0, sys.argv[4])
from nbsched import Scheduler
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
store = SQLAlchemyJobStore(sys.argv[1], table_prefix=sys.argv[2])
sched = Scheduler(store=store, owner=sys.argv[3], max_workers=8)
sched.start()
print("up", flush=True)
stop.wait()
sched.shutdown(wait=True, timeout=10)
store.close()
"""


def _store(url: str, prefix: str) -> Any:
    from nbsched.stores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(url, table_prefix=prefix)


def _add_jobs(store: Any, n: int) -> None:
    from nbsched import Scheduler

    adder = Scheduler(store=store, owner=OWNER)
    for i in range(n):
        adder.add_job("_common:noop", "every 1s", name=f"j{i:05d}")


def run_once(url: str, jobs: int, procs: int, seconds: float, warmup: float) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    store = _store(url, prefix)
    _add_jobs(store, jobs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, HERE, os.environ.get("PYTHONPATH", "")]))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, prefix, OWNER, HERE],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(procs)
    ]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "up"
    start = time.time()
    time.sleep(seconds)  # (a benchmark's measured window, not a test's wait)
    end = time.time()
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        w.wait(60)
        assert w.stdout is not None
        w.stdout.close()
    runs = store.get_runs(owner=OWNER, limit=10_000_000)
    first, last = start + warmup, end - 1.0
    seen = collections.Counter((r.job_name, r.scheduled_ts) for r in runs)
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    expected = lost = 0
    for job in store.get_jobs(OWNER):
        ts = job.trigger.next_fire_ts(first)
        while ts is not None and ts <= last:
            expected += 1
            lost += (job.name, ts) not in seen
            ts = job.trigger.next_fire_ts(ts)
    window = [r for r in runs if first < r.scheduled_ts <= last]
    share = collections.Counter(r.id.split("-")[0] for r in window)
    late = sorted(
        (r.started_ts - r.scheduled_ts) * 1000 for r in window if r.started_ts is not None
    )
    store.close()
    return {
        "procs": procs,
        "fires_per_s": round(len(window) / (last - first), 1),
        "expected": expected,
        "recorded": len(window),
        "duplicates": duplicates,
        "lost": lost,
        "statuses": dict(collections.Counter(r.status.value for r in window)),
        "share": sorted(share.values(), reverse=True),
        "late_median_ms": round(statistics.median(late), 1) if late else None,
        "late_p99_ms": round(late[int(len(late) * 0.99) - 1], 1) if late else None,
    }


def claim_cost(url: str, jobs: int, rounds: int = 5) -> dict[str, float]:
    """Microseconds per fire: claim + releasing write, against the write alone."""
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    store = _store(url, prefix)
    _add_jobs(store, jobs)
    names = [job.name for job in store.get_jobs(OWNER)]
    base = {job.name: job.next_ts for job in store.get_jobs(OWNER)}
    with_claims, write_only = [], []
    for r in range(rounds):
        now = time.time()
        t0 = time.perf_counter()
        lost = store.claim_fires([(n, base[n] + r) for n in names], "me", now, 30.0)
        store.set_next_run_times([(n, base[n] + r + 1) for n in names])
        with_claims.append(time.perf_counter() - t0)
        assert not lost, f"{len(lost)} uncontended claims lost"
        t0 = time.perf_counter()
        store.set_next_run_times([(n, base[n] + r + 1) for n in names])
        write_only.append(time.perf_counter() - t0)
    store.close()
    claim = statistics.median(with_claims) - statistics.median(write_only)
    return {
        "claim_us_per_fire": round(claim / jobs * 1e6, 1),
        "write_us_per_fire": round(statistics.median(write_only) / jobs * 1e6, 1),
    }


@contextlib.contextmanager
def _place(kind: str, pg_url: str, tmp: str) -> Iterator[str]:
    """The URL to use: a SQLite file in ``tmp``, or a schema of our own on the PostgreSQL
    server, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(pg_url)
    schema = f"nbsched_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--procs", default="1,2,3")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds left out at the start")
    ap.add_argument("--pg-url", default=PG_URL)
    args = ap.parse_args()
    sys.path[:0] = [REPO, HERE]
    with tempfile.TemporaryDirectory() as tmp, _place(args.store, args.pg_url, tmp) as url:
        results = [
            run_once(url, args.jobs, int(k), args.seconds, args.warmup) for k in args.procs.split(",")
        ]
        cost = claim_cost(url, args.jobs)
    print(
        f"{args.store}, {args.jobs} jobs every second, {args.seconds:g} s per row\n"
        f"{'procs':>5} {'fires/s':>8} {'expected':>8} {'recorded':>8} {'dup':>4} {'lost':>5} "
        f"{'late med/p99 ms':>16}  share",
        file=sys.stderr,
    )
    for r in results:
        print(
            f"{r['procs']:>5} {r['fires_per_s']:>8} {r['expected']:>8} {r['recorded']:>8} "
            f"{r['duplicates']:>4} {r['lost']:>5} "
            f"{str(r['late_median_ms']) + ' / ' + str(r['late_p99_ms']):>16}  {r['share']}",
            file=sys.stderr,
        )
    print(
        f"claim: {cost['claim_us_per_fire']} us per fire (batched), next-run-time write "
        f"alone: {cost['write_us_per_fire']} us per fire",
        file=sys.stderr,
    )
    print(json.dumps({"store": args.store, "jobs": args.jobs, "runs": results, **cost}))


if __name__ == "__main__":
    main()
