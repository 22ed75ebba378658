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
next-run-time write that releases them, against that write alone, per fire. (APScheduler 4
has no claim-free mode to compare with: every schedule it fires is acquired with a lease,
``acquired_by``/``acquired_until``; its cost is inside its fires/s.)

APScheduler 4 side (``--aps4``, on PostgreSQL): the anchor ``multisched_aps4.py`` (the
shared anchors folder, ``$NBSCHED_ANCHORS``) run by the Python of a venv that has the latest
APScheduler 4 pre-release (``$NBSCHED_APS4_PYTHON``, default ``/tmp/aps4/bin/python``, the
anchors' ``setup_venvs.sh`` venv plus asyncpg and psycopg), on its own scratch database
(``--aps4-db``, dropped at the end), with the same jobs (every second, empty body apart from
recording the run) and the same count of scheduler processes. The two sides alternate which
goes first from one count to the next; each scheduler is a fresh process. Ratios are
nbsched / APScheduler 4.

Usage: python bench_multisched.py [--store postgres|sqlite] [--jobs 1000] [--seconds 6]
           [--procs 1,2,3] [--warmup 1] [--pg-url URL] [--aps4] [--quick]
Prints a table on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
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
ANCHORS = os.environ.get("NBSCHED_ANCHORS", "/work/shared/bench/anchors")
APS4_PYTHON = os.environ.get("NBSCHED_APS4_PYTHON", "/tmp/aps4/bin/python")

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
        lost = store.claim_fires({n: base[n] + r for n in names}, "me", now, 30.0)
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


def aps4_once(
    jobs: int, procs: int, seconds: float, db: str, drain: float
) -> dict[str, Any]:
    """One run of the APScheduler 4 anchor; its figures in this bench's terms."""
    workdir = tempfile.mkdtemp(prefix="nbsched-aps4-")
    cmd = [
        APS4_PYTHON, os.path.join(ANCHORS, "multisched_aps4.py"),
        "--n-sched", str(procs), "--schedules", str(jobs), "--duration", str(round(seconds)),
        "--db", db, "--drain", str(drain), "--settle", "1",
        "--workdir", workdir,
    ]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + drain + 120)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if p.returncode != 0 or not p.stdout.strip():
        raise RuntimeError(f"APScheduler 4 anchor failed ({p.returncode}): {p.stderr[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])["results"]
    late = res["lateness_ms"]
    return {
        "procs": procs,
        "fires_per_s": res["fires_per_s_achieved"],
        "expected": res["fires_expected"],
        "recorded": res["fires_run_unique"],
        "duplicates": res["duplicates"],
        "lost": res["lost"],
        "share": sorted(res["runs_by_pid"].values(), reverse=True),
        "late_median_ms": late.get("p50"),
        "late_p99_ms": late.get("p99"),
    }


def aps4_drop(db: str) -> None:
    subprocess.run(
        [APS4_PYTHON, os.path.join(ANCHORS, "multisched_aps4.py"), "--drop-db", "--db", db],
        capture_output=True, timeout=60, check=False,
    )


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


def _row(side: str, r: dict[str, Any]) -> str:
    late = f"{r['late_median_ms']} / {r['late_p99_ms']}"
    return (
        f"{side:>8} {r['procs']:>5} {r['fires_per_s']:>8} {r['expected']:>8} "
        f"{r['recorded']:>8} {r['duplicates']:>4} {r['lost']:>5} {late:>16}  {r['share']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per row")
    ap.add_argument("--procs", default="1,2,3")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds left out at the start")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--aps4", action="store_true", help="also run APScheduler 4 (PostgreSQL)")
    ap.add_argument("--aps4-db", default="nbsched_bench_aps4")
    ap.add_argument("--quick", action="store_true", help="100 jobs, 4 s rows: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.seconds = min(args.jobs, 100), min(args.seconds, 4.0)
    if args.aps4 and args.store != "postgres":
        ap.error("--aps4 compares on PostgreSQL only (--store postgres)")
    sys.path[:0] = [REPO, HERE]
    counts = [int(k) for k in args.procs.split(",")]
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    drain = 3.0 if args.quick else 15.0
    try:
        with tempfile.TemporaryDirectory() as tmp, _place(args.store, args.pg_url, tmp) as url:
            for i, k in enumerate(counts):
                sides = ["nbsched", "aps4"] if args.aps4 else ["nbsched"]
                for side in sides if i % 2 == 0 else reversed(sides):
                    if side == "nbsched":
                        ours.append(run_once(url, args.jobs, k, args.seconds, args.warmup))
                    else:
                        theirs.append(aps4_once(args.jobs, k, args.seconds, args.aps4_db, drain))
            cost = claim_cost(url, args.jobs)
    finally:
        if args.aps4:
            aps4_drop(args.aps4_db)
    print(
        f"{args.store}, {args.jobs} jobs every second, {args.seconds:g} s per row\n"
        f"{'':>8} {'procs':>5} {'fires/s':>8} {'expected':>8} {'recorded':>8} {'dup':>4} "
        f"{'lost':>5} {'late med/p99 ms':>16}  share",
        file=sys.stderr,
    )
    for r in ours:
        print(_row("nbsched", r), file=sys.stderr)
    for r in theirs:
        print(_row("aps4", r), file=sys.stderr)
    ratios = {
        str(a["procs"]): round(a["fires_per_s"] / b["fires_per_s"], 2) if b["fires_per_s"] else None
        for a, b in zip(ours, theirs, strict=False)
    }
    if theirs:
        print(f"fires/s nbsched / APScheduler 4, by scheduler count: {ratios}", file=sys.stderr)
    print(
        f"claim: {cost['claim_us_per_fire']} us per fire (batched), next-run-time write "
        f"alone: {cost['write_us_per_fire']} us per fire",
        file=sys.stderr,
    )
    out: dict[str, Any] = {"store": args.store, "jobs": args.jobs, "runs": ours, **cost}
    if theirs:
        out.update(aps4=theirs, ratios=ratios)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
