"""What a run on Dask through nbsched costs over a bare ``client.submit`` of the same function.

One ``LocalCluster`` (2 worker processes, 1 thread each) serves both sides in one invocation,
alternating: ``--n`` sequential runs of a function that returns at once, timed end to end
(``client.submit(f).result()`` against ``Scheduler.run_job`` on the ``"dask"`` executor, which
also records the run and captures its output), then ``--burst`` runs submitted together
(``client.map`` + ``gather`` against ``--burst`` jobs fired by the scheduler at one instant).

nbsched's extra per run is mostly the run's own process on the worker (what makes a timeout
or ``cancel_run`` able to stop it and capture its file-descriptor output), forked by the warm
process each worker thread keeps (started by the thread's first run, a warm-up round here):
the figure says what that isolation costs.

Usage: python bench_dask.py [--n 50] [--burst 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402


def noop() -> None:
    """The job of both sides; defined here, so both send it by value (cloudpickle)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--burst", type=int, default=100)
    a = ap.parse_args()
    c.quiet_logs()
    from distributed import Client, LocalCluster

    from nbsched import RunStatus, Scheduler
    from nbsched.events import RunFinished
    from nbsched.executors.dask import DaskJobExecutor

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    sched = Scheduler(timezone="UTC", executors={"dask": DaskJobExecutor(client)})
    sched.start()
    sched.add_job(noop, "every 1h", name="noop", executor="dask")
    bare: list[float] = []
    ours: list[float] = []
    for i in range(a.n + 2):  # two warm-up rounds, not counted
        t = time.perf_counter()
        client.submit(noop, pure=False).result()
        b = time.perf_counter() - t
        t = time.perf_counter()
        run = sched.run_job("noop")
        o = time.perf_counter() - t
        assert run.status is RunStatus.succeeded, run.error
        if i >= 2:
            bare.append(b)
            ours.append(o)

    t = time.perf_counter()
    client.gather(client.map(lambda _: None, range(a.burst), pure=False))
    bare_burst = time.perf_counter() - t

    done = threading.Semaphore(0)
    sched.add_listener(lambda ev: done.release(), RunFinished)
    when = time.time() + 2.0
    for i in range(a.burst):
        sched.add_job(noop, f"at {c.utc_dt(when).isoformat()}", name=f"b{i}", executor="dask")
    c.sleep_until(when)
    t = time.perf_counter()
    for _ in range(a.burst):
        done.acquire(timeout=120)
    ours_burst = time.perf_counter() - t

    sched.shutdown()
    client.close()
    cluster.close()
    bare_p50 = c.dist_ms(bare)["p50"]
    ours_p50 = c.dist_ms(ours)["p50"]
    c.emit(
        "dask_overhead",
        "nbsched",
        {"n": a.n, "burst": a.burst, "workers": 2},
        {
            "bare_submit": c.dist_ms(bare),
            "nbsched_run": c.dist_ms(ours),
            "overhead_p50_ms": round(ours_p50 - bare_p50, 2),
            "burst_bare_s": round(bare_burst, 3),
            "burst_nbsched_s": round(ours_burst, 3),
            "burst_runs_per_s": {
                "bare": round(a.burst / bare_burst, 1),
                "nbsched": round(a.burst / ours_burst, 1),
            },
        },
    )


if __name__ == "__main__":
    main()
