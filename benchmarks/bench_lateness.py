"""Fire lateness and run accounting under load: N interval jobs every 1 s, all aligned.

Every job fires at t0, t0 + 1, ..., t0 + duration - 1 (start = t0, a whole second far enough
ahead to add every job; end = t0 + duration - 0.5), so N * duration runs are expected.

Lateness = the time the job *body* starts (``time.time()`` as its first statement) minus the
fire time the run is for. Both sides pair them exactly:

* aps3: the body returns its start time; the EXECUTED event carries it with
  ``scheduled_run_time`` (the anchor's method);
* nbsched: the body (``stamp_named(job name)``) appends its start time to its job's list;
  after the run, a job's k-th start pairs with its k-th succeeded run by fire time (one run
  per fire time at most: ``max_instances`` is 1). ``run.started_ts - run.scheduled_ts`` (the
  executor's own stamp, from the ``RunFinished`` listener) is reported as well.

Accounting of the expected fire times:

* aps3: executed, EVENT_JOB_MISSED (later than the grace), max_instances skips, and the rest,
  which left no trace at all (coalesced away): ``silent``;
* nbsched: succeeded runs, runs recorded ``missed`` / ``skipped``, and coalesced records (one
  ``missed`` record standing for every fire time from its ``scheduled_ts`` to its
  ``finished_ts``); a fire time covered by none of them is ``silent``. The store is read back
  at the end (``get_runs``) to check that it holds every record.

Also reported: CPU of the whole process, and CPU of the scheduler's own thread
(``APScheduler`` / ``nbsched-loop``) per run dispatched.

Usage: python bench_lateness.py --lib aps3|nbsched --n 1000 [--duration 20] [--grace 1|none]
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def _grace(text: str | None, lib: str) -> float | None:
    if text is None:  # the defaults compared by the targets
        return 1.0 if lib == "aps3" else None
    return None if text == "none" else float(text)


def _lead(n: int, per_job_s: float) -> float:
    return 2.0 + 1.5 * n * per_job_s


# -- APScheduler 3 ----------------------------------------------------------------------------


def _aps3_add(sched: Any, n: int, t0: float, duration: int) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    start, end = c.utc_dt(t0), c.utc_dt(t0 + duration - 0.5)
    for i in range(n):
        trig = IntervalTrigger(seconds=1, start_date=start, end_date=end, timezone="UTC")
        sched.add_job(c.stamp_start, trig, id=f"j{i}")


def run_aps3(
    n: int, duration: int, grace: float | None, workers: int, time_passes: bool = False
) -> dict[str, Any]:
    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
    )

    executed: list[tuple[float, float]] = []
    missed: list[float] = []
    maxinst: list[int] = []
    errors: list[str] = []
    passes: list[tuple[float, int]] = []

    def listener(ev: Any) -> None:
        if ev.code == EVENT_JOB_EXECUTED:
            executed.append((ev.scheduled_run_time.timestamp(), ev.retval))
        elif ev.code == EVENT_JOB_MISSED:
            missed.append(ev.scheduled_run_time.timestamp())
        elif ev.code == EVENT_JOB_MAX_INSTANCES:
            maxinst.append(len(ev.scheduled_run_times))
        else:
            errors.append(repr(ev.exception))

    # pilot: add rate, to place t0 after the last add
    pilot = c.aps3_scheduler(grace=grace, workers=workers)
    t = time.perf_counter()
    _aps3_add(pilot, 200, time.time() + 3600, duration)
    per_job = (time.perf_counter() - t) / 200

    sched = c.aps3_scheduler(grace=grace, workers=workers)
    if time_passes:
        orig = sched._process_jobs
        submitted = [0]

        def timed() -> Any:  # jobs counted by EVENT_JOB_SUBMITTED, as the anchor did
            k0 = submitted[0]
            t = time.perf_counter()
            r = orig()
            passes.append((time.perf_counter() - t, submitted[0] - k0))
            return r

        from apscheduler.events import EVENT_JOB_SUBMITTED

        sched.add_listener(
            lambda ev: submitted.__setitem__(0, submitted[0] + 1), EVENT_JOB_SUBMITTED
        )
        sched._process_jobs = timed
    sched.add_listener(
        listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
    )
    t0 = math.ceil(time.time() + _lead(n, per_job))
    t_add = time.perf_counter()
    _aps3_add(sched, n, t0, duration)
    sched.start()
    setup_s = time.perf_counter() - t_add
    margin = t0 - time.time()
    loop = c.ThreadCPU(c.find_thread("APScheduler"))  # type: ignore[arg-type]

    expected = n * duration
    c.sleep_until(t0 - 0.05)
    passes.clear()
    cpu0, loop0, w0 = c.process_cpu(), loop.seconds(), time.time()
    c.sleep_until(t0 + duration + (grace or 0) + 2.0)
    _drain(lambda: len(executed) + len(missed) + sum(maxinst), expected)
    cpu, loop_cpu, wall = c.process_cpu() - cpu0, loop.seconds() - loop0, time.time() - w0
    sched.shutdown(wait=True)

    n_exec = len(executed)
    res: dict[str, Any] = {
        "expected_runs": expected,
        "ran": n_exec,
        "missed_recorded": len(missed),
        "skipped_recorded": sum(maxinst),
        "coalesced_records": 0,
        "silent": expected - n_exec - len(missed) - sum(maxinst),
        "errors": len(errors),
        "lateness_ms": c.dist_ms(s - sch for sch, s in executed),
    }
    res.update(_cpu_block(cpu, wall, loop_cpu, n_exec, expected, setup_s, margin))
    if time_passes:
        res.update(_passes_block(passes))
    return res


# -- nbsched ----------------------------------------------------------------------------------


def _nbsched_add(
    sched: Any, n: int, t0: float, duration: int, grace: float | None, prefix: str = "j"
) -> None:
    from nbsched import IntervalTrigger

    start, end = c.utc_dt(t0), c.utc_dt(t0 + duration - 0.5)
    for i in range(n):
        trig = IntervalTrigger(1, start=start, end=end)
        name = f"{prefix}{i}"
        c.STAMPS[name] = []
        sched.add_job(
            c.stamp_named, trig, args=(name,), name=name, misfire_grace_time=grace,
            coalesce=True,
        )


def run_nbsched(
    n: int, duration: int, grace: float | None, workers: int, time_passes: bool = False
) -> dict[str, Any]:
    from nbsched import RunFinished, RunStatus, Scheduler

    # (job, scheduled_ts, status, started_ts, finished_ts, coalesced)
    records: list[tuple[str, float, str, float | None, float | None, bool]] = []
    passes: list[tuple[float, int]] = []

    def listener(ev: Any) -> None:
        if type(ev) is RunFinished:
            run = ev.run
            ok = run.status is RunStatus.succeeded
            records.append(
                (
                    run.job_name,
                    run.scheduled_ts,
                    run.status.value,
                    run.started_ts,
                    run.finished_ts,
                    not ok and (run.error or "").startswith("Coalesced"),
                )
            )

    pilot = c.nbsched_scheduler(workers=workers)
    t = time.perf_counter()
    _nbsched_add(pilot, 200, time.time() + 3600, duration, grace)
    per_job = (time.perf_counter() - t) / 200
    del pilot

    cls: type[Any] = Scheduler
    if time_passes:
        cls = _timed_scheduler(passes)
    sched = cls(db_url=None, timezone="UTC", max_workers=workers)
    t0 = math.ceil(time.time() + _lead(n, per_job))
    t_add = time.perf_counter()
    _nbsched_add(sched, n, t0, duration, grace)
    sched.add_listener(listener, RunFinished)  # the aps3 side listens with a mask too
    sched.start()
    setup_s = time.perf_counter() - t_add
    margin = t0 - time.time()
    loop = c.ThreadCPU(c.find_thread("nbsched-loop"))  # type: ignore[arg-type]

    expected = n * duration
    grid = [t0 + k for k in range(duration)]
    c.sleep_until(t0 - 0.05)
    passes.clear()
    cpu0, loop0, w0 = c.process_cpu(), loop.seconds(), time.time()
    c.sleep_until(t0 + duration + (grace or 0) + 2.0)
    _drain(lambda: len(records), expected)  # cheap while it runs; coverage checked after
    cpu, loop_cpu, wall = c.process_cpu() - cpu0, loop.seconds() - loop0, time.time() - w0
    stored = sched.get_runs(limit=expected * 2 + 10)
    sched.shutdown(wait=True)

    ran = [r for r in records if r[2] == "succeeded"]
    starts = _pair_starts(ran)  # (scheduled_ts, body start) per succeeded run
    status = defaultdict(int)
    for r in records:
        status[r[2] + ("/coalesced" if r[5] else "")] += 1
    covered = _covered_count(records, grid)
    res: dict[str, Any] = {
        "expected_runs": expected,
        "ran": len(ran),
        "missed_recorded": status["missed"],
        "skipped_recorded": status["skipped"],
        "coalesced_records": status["missed/coalesced"],
        "coalesced_fire_times": covered - len(records) + status["missed/coalesced"],
        "silent": expected - covered,
        "errors": status["failed"],
        "statuses": dict(status),
        "stored_runs": len(stored),
        "stored_matches_events": len(stored) == len(records),
        "body_starts_paired": len(starts) == len(ran),
        "lateness_ms": c.dist_ms(body - sched for sched, body in starts),
        # p99 of each fire time (second), to tell a steady cost from one bad second
        "lateness_p99_by_second_ms": _by_second(starts),
        # the executor's own stamp (Run.started_ts), set just before the body is called
        "lateness_executor_stamp_ms": c.dist_ms(r[3] - r[1] for r in ran),  # type: ignore[operator]
    }
    res.update(_cpu_block(cpu, wall, loop_cpu, len(ran), expected, setup_s, margin))
    if time_passes:
        res.update(_passes_block(passes))
    return res


def _pair_starts(ran: list[Any]) -> list[tuple[float, float]]:
    """(fire time, body start) of every succeeded run: a job's runs in fire-time order pair
    with its body's start times in order. Jobs whose counts differ are left out (and
    ``body_starts_paired`` turns false)."""
    fires: dict[str, list[float]] = defaultdict(list)
    for r in ran:
        fires[r[0]].append(r[1])
    pairs: list[tuple[float, float]] = []
    for name, times in fires.items():
        stamps = c.STAMPS.get(name, [])
        if len(stamps) == len(times):
            pairs.extend(zip(sorted(times), sorted(stamps), strict=True))
    return pairs


def _by_second(starts: list[tuple[float, float]]) -> list[float | None]:
    by: dict[float, list[float]] = defaultdict(list)
    for sched, body in starts:
        by[sched].append(body - sched)
    return [c.dist_ms(by[k]).get("p99") for k in sorted(by)]


def _timed_scheduler(passes: list[tuple[float, int]]) -> type[Any]:
    """A Scheduler whose dispatch passes are timed (wall clock), as the anchor timed
    APScheduler's ``_process_jobs``."""
    from nbsched import Scheduler

    class TimedScheduler(Scheduler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            loop = self._engine.loop
            dispatch_due = loop._dispatch_due

            def timed(now: float, events: list[Any]) -> int:
                t = time.perf_counter()
                k = dispatch_due(now, events)
                if k:
                    passes.append((time.perf_counter() - t, k))
                return k

            loop._dispatch_due = timed  # type: ignore[method-assign]

    return TimedScheduler


def _covered_count(records: list[Any], grid: list[float]) -> int:
    """Expected fire times accounted for by a record: its own ``scheduled_ts``, or, for a
    coalesced record, every grid time from its ``scheduled_ts`` up to its ``finished_ts``."""
    seen: dict[str, set[float]] = defaultdict(set)
    for name, sched_ts, _status, _st, fin, coalesced in list(records):
        if coalesced and fin is not None:
            seen[name].update(g for g in grid if sched_ts - 1e-6 <= g <= fin)
        else:
            seen[name].add(round(sched_ts, 6))
    grid_set = {round(g, 6) for g in grid}
    return sum(len({round(x, 6) for x in s} & grid_set) for s in seen.values())


# -- shared -----------------------------------------------------------------------------------


def _drain(count: Any, expected: int, quiet_s: float = 1.0, bound_s: float = 30.0) -> None:
    """Wait until every expected fire time is accounted for, or nothing moved for
    ``quiet_s`` (bounded by ``bound_s``)."""
    deadline = time.time() + bound_s
    last, last_change = -1, time.time()
    while time.time() < deadline:
        now_count = count()
        if now_count >= expected:
            return
        if now_count != last:
            last, last_change = now_count, time.time()
        elif time.time() - last_change > quiet_s:
            return
        time.sleep(0.1)


def _cpu_block(
    cpu: float, wall: float, loop_cpu: float, ran: int, expected: int, setup_s: float, margin: float
) -> dict[str, Any]:
    if margin < 0.2:
        c.log(f"WARNING: setup overran the first fire time (margin {margin:.3f} s)")
    return {
        "cpu_s": round(cpu, 3),
        "cpu_util_pct": round(100.0 * cpu / wall, 1),
        "loop_cpu_s": round(loop_cpu, 4),
        "loop_cpu_us_per_run": round(1e6 * loop_cpu / ran, 2) if ran else None,
        "loop_cpu_us_per_fire_time": round(1e6 * loop_cpu / expected, 2),
        "setup_s": round(setup_s, 3),
        "start_margin_s": round(margin, 3),
    }


def _passes_block(passes: list[tuple[float, int]]) -> dict[str, Any]:
    busy = [(d, k) for d, k in passes if k > 0]
    tot_d = sum(d for d, _ in busy)
    tot_k = sum(k for _, k in busy)
    return {
        "passes_with_work": len(busy),
        "pass_ms": c.dist_ms(d for d, _ in busy),
        "pass_jobs": tot_k,
        "pass_wall_us_per_job": round(1e6 * tot_d / tot_k, 2) if tot_k else None,
    }


def main() -> None:
    ap = c.base_args(__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument(
        "--grace",
        default=None,
        help="misfire_grace_time seconds or 'none' (default: aps3 1 s, nbsched none)",
    )
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument(
        "--time-passes", action="store_true", help="also time each dispatch pass (wall clock)"
    )
    ap.add_argument(
        "--gc-off", action="store_true",
        help="switch Python's garbage collector off (to tell its pauses from the machine's)",
    )
    a = ap.parse_args()
    if a.gc_off:
        import gc

        gc.disable()
    c.quiet_logs()
    grace = _grace(a.grace, a.lib)
    run = run_aps3 if a.lib == "aps3" else run_nbsched
    res = run(a.n, a.duration, grace, a.workers, a.time_passes)
    c.emit(
        "lateness",
        a.lib,
        {
            "n": a.n,
            "duration_s": a.duration,
            "phase": "aligned",
            "workers": a.workers,
            "misfire_grace_time": grace,
            "coalesce": True,
            "max_instances": 1,
            "store": "memory",
        },
        res,
    )


if __name__ == "__main__":
    main()
