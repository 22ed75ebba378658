"""Process pools side by side: nbsched's ProcessJobExecutor vs APScheduler 3's
ProcessPoolExecutor (its default: a ``concurrent.futures`` pool with spawn workers).

Four measurements, each made the same way for both libraries:

(a) **warm lateness**: one interval job firing every ``--interval`` s for ``--samples`` runs
    on a warm pool; lateness = the time the body starts in the worker (``time.time()``, its
    first statement) minus the fire time of the run. The first run is left out (cold).
(b) **cold first job**: a fresh scheduler and pool; one job due ``--lead`` s after start.
    For nbsched also "due at once" (the forkserver is still starting: the worst case).
(c) **shutdown with a running 30 s job**: a host process starts the job, then calls
    ``shutdown`` and returns from main; we time the host's exit.
(d) **SIGKILL of the host** while the job (which has a ``sleep`` grandchild) runs: which of
    the host's job processes are still alive ``--watch`` s later.

nbsched is driven through ``nbsched.Scheduler`` when it can be imported (``--driver auto``),
else through the executor directly, with a thread that sleeps until each fire time and
submits (what the scheduler's loop does). Everything started is killed at the end, by
psutil process object (never a pid that may have been reused).

Usage: python benchmarks/bench_procpool.py [--samples 100] [--interval 0.1] [--job-s 30]
       [--driver auto|scheduler|executor] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

UTC = dt.UTC


# -- job bodies (importable as bench_procpool.*, by every worker) ---------------------------------


def stamp() -> float:
    """The body's start time (APScheduler hands the return value to its EXECUTED event)."""
    return time.time()


def sleeper(seconds: float, mark: str) -> None:
    """Start a grandchild, tell the host our pids, sleep."""
    child = subprocess.Popen(["sleep", str(seconds)])
    with open(mark + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(mark + ".tmp", mark)
    time.sleep(seconds)


# -- helpers -----------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _dist_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(_pct(ms, 50), 3),
        "p99": round(_pct(ms, 99), 3),
        "max": round(max(ms), 3),
    }


def _sleep_until(t: float) -> None:
    while True:
        d = t - time.time()
        if d <= 0:
            return
        time.sleep(min(d, 0.5))


def _log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def _use_scheduler(driver: str) -> bool:
    if driver == "executor":
        return False
    try:
        from nbsched import Scheduler  # noqa: F401
        from nbsched.triggers import DateTrigger, IntervalTrigger  # noqa: F401
    except ImportError as exc:
        if driver == "scheduler":
            raise
        _log(f"nbsched.Scheduler not importable ({exc}); driving the executor directly")
        return False
    return True


# -- (a) warm lateness ---------------------------------------------------------------------------


def aps_warm(samples: int, interval: float) -> list[float]:
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.executors.pool import ProcessPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    recs: list[tuple[float, float]] = []
    sched = BackgroundScheduler(executors={"default": ProcessPoolExecutor(4)}, timezone=UTC)
    sched.add_listener(
        lambda ev: recs.append((ev.scheduled_run_time.timestamp(), ev.retval)),
        EVENT_JOB_EXECUTED,
    )
    t0 = math.ceil(time.time() + 1.0)
    end = t0 + interval * samples + interval / 2
    trig = IntervalTrigger(
        seconds=interval,
        start_date=dt.datetime.fromtimestamp(t0, UTC),
        end_date=dt.datetime.fromtimestamp(end, UTC),
        timezone=UTC,
    )
    sched.add_job(stamp, trig, misfire_grace_time=None)
    sched.start()
    _sleep_until(end + 2)
    sched.shutdown(wait=True)
    recs.sort()
    return [started - fire for fire, started in recs[1:]]


def nb_warm_executor(samples: int, interval: float) -> list[float]:
    from nbsched._clock import SystemClock
    from nbsched.abc import RunRequest
    from nbsched.executors.process import ProcessJobExecutor

    done = threading.Semaphore(0)
    lat: list[float] = []

    def finished(req: RunRequest, *rest: Any) -> None:
        if req.started_ts is not None:
            lat.append(req.started_ts - req.scheduled_ts)
        done.release()

    ex = ProcessJobExecutor(4)
    ex.start(SystemClock(), lambda r: None, finished)
    try:
        t0 = math.ceil(time.time() + 1.0)
        for k in range(samples + 1):
            fire = t0 + k * interval
            _sleep_until(fire)
            ex.submit(RunRequest(f"w{k}", "warm", stamp, "", (), {}, fire, None, 0, None))
            done.acquire(timeout=30)
    finally:
        ex.shutdown()
    return lat[1:]


def nb_warm_scheduler(samples: int, interval: float) -> list[float]:
    from nbsched import Scheduler
    from nbsched.triggers import IntervalTrigger

    s = Scheduler(timezone="UTC", max_workers=4)
    s.start()
    try:
        t0 = math.ceil(time.time() + 1.0)
        end = t0 + interval * samples + interval / 2
        trig = IntervalTrigger(
            interval,
            start=dt.datetime.fromtimestamp(t0, UTC),
            end=dt.datetime.fromtimestamp(end, UTC),
        )
        s.add_job(stamp, trig, name="warm", executor="process")
        _sleep_until(end + 2)
        runs = s.get_runs("warm", limit=samples + 10)
    finally:
        s.shutdown()
    runs = sorted((r for r in runs if r.started_ts is not None), key=lambda r: r.scheduled_ts)
    return [r.started_ts - r.scheduled_ts for r in runs[1:]]  # type: ignore[operator]


# -- (b) cold first job ----------------------------------------------------------------------------


def aps_cold(lead: float) -> float:
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.executors.pool import ProcessPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    got: list[float] = []
    ev_done = threading.Event()

    def listener(ev: Any) -> None:
        got.append(ev.retval - ev.scheduled_run_time.timestamp())
        ev_done.set()

    sched = BackgroundScheduler(executors={"default": ProcessPoolExecutor(4)}, timezone=UTC)
    sched.add_listener(listener, EVENT_JOB_EXECUTED)
    sched.start()
    when = dt.datetime.fromtimestamp(time.time() + lead, UTC)
    sched.add_job(stamp, "date", run_date=when, misfire_grace_time=None)
    ev_done.wait(30)
    sched.shutdown(wait=True)
    return got[0]


def nb_cold_executor(lead: float) -> float:
    from nbsched._clock import SystemClock
    from nbsched.abc import RunRequest
    from nbsched.executors.process import ProcessJobExecutor

    box: list[float] = []
    ev_done = threading.Event()

    def finished(req: RunRequest, *rest: Any) -> None:
        box.append((req.started_ts or math.nan) - req.scheduled_ts)
        ev_done.set()

    ex = ProcessJobExecutor(4)
    ex.start(SystemClock(), lambda r: None, finished)
    try:
        fire = time.time() + lead
        _sleep_until(fire)
        ex.submit(RunRequest("c", "cold", stamp, "", (), {}, fire, None, 0, None))
        ev_done.wait(30)
    finally:
        ex.shutdown()
    return box[0]


def nb_cold_scheduler(lead: float) -> float:
    from nbsched import Scheduler
    from nbsched.triggers import DateTrigger

    s = Scheduler(timezone="UTC", max_workers=4)
    s.start()
    try:
        if lead <= 0:  # due at once: run_job right after add_job (which starts the pool)
            s.add_job(stamp, "every 1h", name="cold", executor="process")
            run = s.run_job("cold")
        else:
            when = dt.datetime.fromtimestamp(time.time() + lead, UTC)
            s.add_job(stamp, DateTrigger(when), name="cold", executor="process")
            deadline = time.time() + lead + 30
            runs: list[Any] = []
            while time.time() < deadline and not runs:
                time.sleep(0.02)
                runs = [r for r in s.get_runs("cold") if r.finished_ts is not None]
            run = runs[0]
    finally:
        s.shutdown()
    return run.started_ts - run.scheduled_ts  # type: ignore[no-any-return]


# -- (c, d) host processes -----------------------------------------------------------------------------

HOST_SETUP = {
    "aps3": """
from apscheduler.executors.pool import ProcessPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
sched = BackgroundScheduler(executors={"default": ProcessPoolExecutor(4)}, timezone=UTC)
sched.start()
sched.add_job(sleeper, "date", run_date=dt.datetime.now(UTC), args=[JOB_S, MARK],
              misfire_grace_time=None)
stop = lambda: sched.shutdown(wait=False)
""",
    "executor": """
from nbsched._clock import SystemClock
from nbsched.abc import RunRequest
from nbsched.executors.process import ProcessJobExecutor
ex = ProcessJobExecutor(4)
ex.start(SystemClock(), lambda r: None, lambda *a: None)
ex.submit(RunRequest("s", "sleeper", sleeper, "", (JOB_S, MARK), {}, time.time(), None, 0, None))
stop = ex.shutdown
""",
    "scheduler": """
from nbsched import Scheduler
s = Scheduler(timezone="UTC", max_workers=4)
s.start()
s.add_job(sleeper, "every 1h", name="sleeper", executor="process", args=(JOB_S, MARK))
threading.Thread(target=s.run_job, args=("sleeper",), daemon=True).start()
stop = s.shutdown
""",
}

HOST = """
import datetime as dt, json, os, sys, threading, time
sys.path.insert(0, {here!r})
import psutil
from bench_procpool import sleeper
UTC = dt.timezone.utc
MODE, JOB_S, MARK = {mode!r}, {job_s!r}, {mark!r}
{setup}
while not os.path.exists(MARK):
    time.sleep(0.01)
worker, grandchild = map(int, open(MARK).read().split())
kids = [c.pid for c in psutil.Process().children(recursive=True)]
print(json.dumps({{"worker": worker, "grandchild": grandchild, "children": kids}}), flush=True)
if MODE == "sigkill":
    time.sleep(3600)
t = time.time()
print(json.dumps({{"shutdown_at": t}}), flush=True)
stop()
print(json.dumps({{"shutdown_call_s": time.time() - t}}), flush=True)
"""


def run_host(lib: str, mode: str, job_s: float, watch: float, tmp: str) -> dict[str, Any]:
    import psutil

    mark = os.path.join(tmp, f"procpool-{lib}-{mode}-{os.getpid()}.pids")
    code = HOST.format(here=HERE, mode=mode, job_s=job_s, mark=mark, setup=HOST_SETUP[lib])
    host = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp
    )
    assert host.stdout is not None
    tracked: list[psutil.Process] = []
    res: dict[str, Any] = {}
    try:
        info = json.loads(host.stdout.readline())
        for pid in {info["worker"], info["grandchild"], *info["children"]}:
            try:
                tracked.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        if mode == "sigkill":
            t_event = time.time()
            host.kill()
        else:
            t_event = json.loads(host.stdout.readline())["shutdown_at"]
        host.wait(timeout=job_s + 60)
        res["host_exit_s"] = round(time.time() - t_event, 3)
        if mode != "sigkill":
            rest = host.stdout.read().strip().splitlines()
            if rest:
                res["shutdown_call_s"] = round(json.loads(rest[-1])["shutdown_call_s"], 3)

        def alive(p: psutil.Process) -> bool:
            try:
                return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        gone_at: dict[int, float] = {}
        end = time.time() + watch
        while True:
            for p in tracked:
                if p.pid not in gone_at and not alive(p):
                    gone_at[p.pid] = round(time.time() - t_event, 3)
            if len(gone_at) == len(tracked) or time.time() > end:
                break
            time.sleep(0.02)
        survivors = [p for p in tracked if alive(p)]
        res.update(
            processes=len(tracked),
            survivors=len(survivors),
            job_worker_survived=any(p.pid == info["worker"] for p in survivors),
            all_gone_after_s=max(gone_at.values()) if not survivors and gone_at else None,
        )
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        host.stdout.close()
        for p in tracked:  # clean up what we started, by process object
            try:
                p.kill()
            except psutil.Error:
                pass
        for path in (mark, mark + ".tmp"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
    return res


# -- main ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=100, help="warm runs per library")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between warm runs")
    ap.add_argument("--cold-reps", type=int, default=3)
    ap.add_argument("--lead", type=float, default=0.5, help="cold job due this long after start")
    ap.add_argument("--job-s", type=float, default=30.0)
    ap.add_argument("--watch", type=float, default=5.0, help="seconds to watch for survivors")
    ap.add_argument("--driver", choices=["auto", "scheduler", "executor"], default="auto")
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    a = ap.parse_args()
    tmp = os.environ.get("NBSCHED_BENCH_TMP", "/tmp")
    sched = _use_scheduler(a.driver)
    nb = "scheduler" if sched else "executor"
    out: dict[str, Any] = {"driver": nb}

    _log("(a) warm lateness ...")
    aps_lat = aps_warm(a.samples, a.interval)
    nb_lat = (nb_warm_scheduler if sched else nb_warm_executor)(a.samples, a.interval)
    out["warm"] = {"aps3": _dist_ms(aps_lat), "nbsched": _dist_ms(nb_lat)}

    _log("(b) cold first job ...")
    aps_cold_s = [aps_cold(a.lead) for _ in range(a.cold_reps)]
    nb_cold = nb_cold_scheduler if sched else nb_cold_executor
    nb_cold_s = [nb_cold(a.lead) for _ in range(a.cold_reps)]
    nb_cold_now = [nb_cold(0.0) for _ in range(a.cold_reps)]
    out["cold"] = {
        "aps3": _dist_ms(aps_cold_s),
        "nbsched": _dist_ms(nb_cold_s),
        "nbsched_due_at_start": _dist_ms(nb_cold_now),
    }

    _log(f"(c) shutdown with a running {a.job_s:g} s job ...")
    out["shutdown"] = {
        "aps3": run_host("aps3", "exit", a.job_s, a.watch, tmp),
        "nbsched": run_host(nb, "exit", a.job_s, a.watch, tmp),
    }
    _log("(d) SIGKILL of the host ...")
    out["sigkill"] = {
        "aps3": run_host("aps3", "sigkill", a.job_s, a.watch, tmp),
        "nbsched": run_host(nb, "sigkill", a.job_s, a.watch, tmp),
    }
    _print_table(out, a)
    if a.json:
        print(json.dumps(out, sort_keys=True))


def _print_table(out: dict[str, Any], a: argparse.Namespace) -> None:
    def ratio(x: float | None, y: float | None) -> str:
        if not x or not y:
            return "-"
        return f"{x / y:.1f}x"

    w, c = out["warm"], out["cold"]
    sd, sk = out["shutdown"], out["sigkill"]
    rows = [
        (
            f"(a) warm lateness p50 (n={w['nbsched']['n']}, every {a.interval:g} s)",
            w["aps3"]["p50"],
            w["nbsched"]["p50"],
            "ms",
        ),
        ("(a) warm lateness p99", w["aps3"]["p99"], w["nbsched"]["p99"], "ms"),
        (
            f"(b) cold first job p50 (due {a.lead:g} s after start, n={a.cold_reps})",
            c["aps3"]["p50"],
            c["nbsched"]["p50"],
            "ms",
        ),
        (
            "(b) cold first job, due at start (forkserver starting)",
            c["aps3"]["p50"],
            c["nbsched_due_at_start"]["p50"],
            "ms",
        ),
        (
            f"(c) host exit after shutdown, {a.job_s:g} s job running",
            sd["aps3"]["host_exit_s"],
            sd["nbsched"]["host_exit_s"],
            "s",
        ),
        (
            "(c) processes alive after host exit",
            sd["aps3"]["survivors"],
            sd["nbsched"]["survivors"],
            "",
        ),
        (
            f"(d) SIGKILL of host: job processes alive {a.watch:g} s later",
            f"{sk['aps3']['survivors']}/{sk['aps3']['processes']}",
            f"{sk['nbsched']['survivors']}/{sk['nbsched']['processes']}",
            "",
        ),
        (
            "(d) SIGKILL of host: all gone after",
            sk["aps3"]["all_gone_after_s"],
            sk["nbsched"]["all_gone_after_s"],
            "s",
        ),
    ]
    head = f"{'metric':62} {'APScheduler 3':>14} {'nbsched':>10} {'ratio':>7}"
    print(f"nbsched ({out['driver']}) vs APScheduler 3.11 ProcessPoolExecutor (spawn)")
    print(head)
    print("-" * len(head))
    for label, x, y, unit in rows:
        r = ratio(x, y) if isinstance(x, (int, float)) and isinstance(y, (int, float)) else "-"
        xs = "never" if x is None else f"{x}{unit}"
        ys = "never" if y is None else f"{y}{unit}"
        print(f"{label:62} {xs:>14} {ys:>10} {r:>7}")


if __name__ == "__main__":
    main()
