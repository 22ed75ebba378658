"""Shared helpers for the nbsched benchmarks (stdlib only, plus psutil where noted).

Every ``bench_*.py`` script measures one library per process (``--lib aps3|nbsched``) and
prints exactly one JSON line on stdout; diagnostics go to stderr. Times in results are
milliseconds unless the key says otherwise (``_s`` seconds, ``_us`` microseconds).

The job bodies live here too, so that a fresh process (restart benchmark) can import them
by reference (``"_common:noop"``): the scripts put this directory on ``sys.path``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

LIBS = ("aps3", "nbsched")
SCRATCH = os.environ.get("NBSCHED_BENCH_TMP", "/tmp")

# -- job bodies ------------------------------------------------------------------------------

#: body start times, appended by :func:`record_start` (list.append is atomic under the GIL)
STARTS: list[float] = []


def noop() -> None:
    """A body that does nothing."""


def record_start() -> None:
    """Append the body's start time to :data:`STARTS`."""
    STARTS.append(time.time())


def stamp_start() -> float:
    """Return the body's start time (APScheduler hands the return value to its EXECUTED
    event)."""
    return time.time()


#: body start times per job name, appended by :func:`stamp_named`
STAMPS: dict[str, list[float]] = {}


def stamp_named(name: str) -> None:
    """Append the body's start time to the list of job ``name`` (create it beforehand:
    ``STAMPS[name] = []``). A job's k-th start pairs with its k-th run, whichever thread
    reports the run and whenever."""
    STAMPS[name].append(time.time())


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, ``q`` in [0, 100]; ``None`` for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def dist_ms(values_s: Iterable[float]) -> dict[str, float | int]:
    """Summary of durations given in seconds, in milliseconds."""
    ms = sorted(v * 1000.0 for v in values_s)
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "min": round(ms[0], 3),
        "p50": round(percentile(ms, 50), 3),  # type: ignore[arg-type]
        "p90": round(percentile(ms, 90), 3),  # type: ignore[arg-type]
        "p99": round(percentile(ms, 99), 3),  # type: ignore[arg-type]
        "max": round(ms[-1], 3),
        "mean": round(sum(ms) / len(ms), 3),
    }


# -- environment -----------------------------------------------------------------------------


def lib_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("apscheduler", "nbsched", "sqlalchemy", "psutil"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def emit(bench: str, lib: str, params: dict[str, Any], results: dict[str, Any]) -> None:
    """Print the one JSON line of a benchmark run."""
    out = {
        "bench": bench,
        "lib": lib,
        "params": params,
        "results": results,
        "versions": lib_versions(),
        "machine": machine(),
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """Silence both libraries' loggers. APScheduler logs one WARNING per missed run; tens of
    thousands of lines on stderr would distort the numbers."""
    import logging

    for name in ("apscheduler", "nbsched"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def sleep_until(t_wall: float) -> None:
    """Sleep until wall-clock time ``t_wall`` (``time.time()`` scale)."""
    while True:
        d = t_wall - time.time()
        if d <= 0:
            return
        time.sleep(min(d, 0.5))


def wait_until(pred: Any, timeout: float, step: float = 0.02) -> bool:
    """Poll ``pred()`` until true or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def rm_db(path: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def db_path(name: str) -> str:
    return os.path.join(SCRATCH, f"nbsched_bench_{name}_{os.getpid()}.sqlite")


# -- CPU and memory --------------------------------------------------------------------------


def find_thread(name: str) -> threading.Thread | None:
    """The live thread called ``name`` (``"nbsched-loop"``, ``"APScheduler"``)."""
    for t in threading.enumerate():
        if t.name == name:
            return t
    return None


class ThreadCPU:
    """CPU time of one thread, read from outside it: the kernel's per-thread CPU clock
    (``pthread_getcpuclockid``, nanosecond resolution; ``/proc/self/task/<tid>/stat`` only has
    10 ms ticks). Falls back to /proc if the clock is unavailable."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self._clock: int | None = None
        self._last = 0.0
        try:
            assert thread.ident is not None
            self._clock = time.pthread_getcpuclockid(thread.ident)
        except (AttributeError, OSError, AssertionError):
            self._clock = None

    def seconds(self) -> float:
        """CPU seconds so far; the last value read once the thread has ended."""
        try:
            if self._clock is not None:
                self._last = time.clock_gettime(self._clock)
            elif self.thread.native_id is not None:
                with open(f"/proc/self/task/{self.thread.native_id}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                self._last = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:  # the thread has ended
            pass
        return self._last


def process_cpu() -> float:
    """User + system CPU seconds of this process, every thread (``CLOCK_PROCESS_CPUTIME_ID``:
    nanosecond resolution, where psutil / ``os.times`` count 10 ms ticks)."""
    return time.process_time()


def voluntary_ctx_switches() -> int:
    """Voluntary context switches of every thread of this process (wake-ups after a wait).
    ``/proc/<pid>/status`` alone counts only the main thread."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        total += int(line.split()[1])
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return total


def rss_bytes() -> int:
    """Resident set size after a full collection (psutil)."""
    import gc

    import psutil

    gc.collect()
    time.sleep(0.2)
    return int(psutil.Process().memory_info().rss)


# -- library shims ---------------------------------------------------------------------------


def utc_dt(ts: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC)


def aps3_scheduler(
    store: str = "memory",
    path: str | None = None,
    workers: int = 10,
    grace: float | None = 1.0,
    **job_defaults: Any,
) -> Any:
    """A BackgroundScheduler as the anchor measured it: ThreadPoolExecutor(workers),
    timezone UTC, 3.x defaults apart from ``misfire_grace_time`` (its default is 1 s)."""
    import datetime as dt

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    if store == "memory":
        jobstore: Any = MemoryJobStore()
    else:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        assert path is not None
        jobstore = SQLAlchemyJobStore(url="sqlite:///" + path)
    return BackgroundScheduler(
        jobstores={"default": jobstore},
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={"misfire_grace_time": grace, **job_defaults},
        timezone=dt.UTC,
    )


def nbsched_scheduler(
    store: str = "memory", path: str | None = None, workers: int = 10, **kwargs: Any
) -> Any:
    """An nbsched Scheduler on the memory store or a SQLite file."""
    from nbsched import Scheduler

    db_url = None if store == "memory" else "sqlite:///" + str(path)
    return Scheduler(db_url=db_url, timezone="UTC", max_workers=workers, **kwargs)


def base_args(description: str) -> Any:
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--lib", choices=LIBS, required=True)
    return ap
