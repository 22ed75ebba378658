"""Several schedulers, one store: each fire runs exactly once.

Real scheduler processes (a small script each) on one SQLite file or one PostgreSQL schema
serve the same jobs. Afterwards the run table must show every expected fire once -- never
twice, never missing -- with the work spread over more than one of them. A scheduler killed
with SIGKILL loses its claims after the lease: the others take over, and the runs it left
``running`` become ``crashed``.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsched import Scheduler
from nbsched.jobs import Run, RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.wait import wait_for
from tests.stores.conftest import pg_url  # noqa: F401  (the per-session PostgreSQL schema)

REPO = Path(__file__).resolve().parents[2]
OWNER = "nb"

#: one scheduler process: serves ``OWNER``'s jobs until SIGTERM; prints its id in the store's
#: claims (the prefix of its run ids) once started
WORKER = """
import signal, sys, threading
from nbsched import Scheduler
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
url, owner, lease, prefix = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
sched = Scheduler(
    store=SQLAlchemyJobStore(url, table_prefix=prefix), owner=owner, lease_seconds=lease
)
sched.start()
print(sched._engine.loop.scheduler_id, flush=True)
stop.wait()
sched.shutdown(wait=True, timeout=5)
"""


def nap(seconds: float = 0.0) -> None:
    """The body of the test jobs."""
    time.sleep(seconds)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.external_service)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(url, table prefix)`` of a store the scheduler processes share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}", "nbsched_"
        return
    # tables of their own in the session's schema (dropped with it)
    yield request.getfixturevalue("pg_url"), f"x{time.monotonic_ns() % 10**10}_"


class Workers:
    def __init__(self, url: str, prefix: str, lease: float) -> None:
        self.url, self.prefix, self.lease = url, prefix, lease
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def spawn(self) -> str:
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, self.url, OWNER, str(self.lease), self.prefix],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # (ends at its first line, or when it dies)
        assert line, f"scheduler process failed to start (exit {proc.wait(10)})"
        self.procs[line] = proc
        return line

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


OPENED: list[SQLAlchemyJobStore] = []


@pytest.fixture
def workers(shared: tuple[str, str]) -> Iterator[object]:
    made: list[Workers] = []

    def make(lease: float) -> Workers:
        made.append(Workers(shared[0], shared[1], lease))
        return made[-1]

    yield make
    for w in made:
        w.stop_all()
    while OPENED:
        OPENED.pop().close()


def add_jobs(url: str, prefix: str, count: int, **options: object) -> SQLAlchemyJobStore:
    store = SQLAlchemyJobStore(url, table_prefix=prefix)
    OPENED.append(store)
    adder = Scheduler(store=store, owner=OWNER)  # not started: it only stores the jobs
    for i in range(count):
        adder.add_job(f"{__name__}:nap", "every 1s", name=f"job{i:03d}", **options)  # type: ignore[arg-type]
    return store


def all_runs(store: SQLAlchemyJobStore) -> list[Run]:
    return store.get_runs(owner=OWNER, limit=100_000)


def fires_per_job(store: SQLAlchemyJobStore) -> collections.Counter[str]:
    return collections.Counter(run.job_name for run in all_runs(store))


def check_exactly_once(
    store: SQLAlchemyJobStore, runs: list[Run], names: list[str], first: float, last: float
) -> None:
    """No ``(job, fire time)`` twice; every fire time of every job in ``[first, last]`` is
    a run (or a recorded missed/skipped)."""
    seen = collections.Counter((run.job_name, run.scheduled_ts) for run in runs)
    twice = [key for key, n in seen.items() if n > 1]
    assert not twice, f"fires run more than once: {twice[:10]}"
    missing = []
    for name in names:
        job = store.get_job(name)
        assert job is not None
        ts = job.trigger.next_fire_ts(first)
        while ts is not None and ts <= last:
            if (name, ts) not in seen:
                missing.append((name, ts))
            ts = job.trigger.next_fire_ts(ts)
    assert not missing, f"fires never run nor recorded: {missing[:10]}"
    assert len(seen) > len(names)


@pytest.mark.parametrize("count", [3])
def test_schedulers_sharing_a_store_run_each_fire_once(
    shared: tuple[str, str], workers: object, count: int
) -> None:
    url, prefix = shared
    store = add_jobs(url, prefix, 40)
    names = [f"job{i:03d}" for i in range(40)]
    w: Workers = workers(lease=5.0)  # type: ignore[operator]
    for _ in range(count):
        w.spawn()
    started = time.time()
    wait_for(lambda: min(fires_per_job(store).values(), default=0) >= 5, 30, "5 fires of each job")
    stopped = time.time()
    w.stop_all()
    runs = all_runs(store)
    check_exactly_once(store, runs, names, started + 1.5, stopped - 1.5)
    by = collections.Counter(
        run.id.split("-")[0] for run in runs if run.status is RunStatus.succeeded
    )
    assert len(by) > 1, f"one scheduler ran everything: {by}"
    assert set(by) <= set(w.procs)


def test_a_killed_scheduler_loses_its_claims_and_its_running_runs_crash(
    shared: tuple[str, str], workers: object
) -> None:
    url, prefix = shared
    store = add_jobs(url, prefix, 20)
    adder = Scheduler(store=store, owner=OWNER)
    adder.add_job(f"{__name__}:nap", "every 1s", name="slow", args=(30,))
    names = [f"job{i:03d}" for i in range(20)]
    w: Workers = workers(lease=2.0)  # type: ignore[operator]
    first, second = w.spawn(), w.spawn()

    def running_of(who: str) -> list[Run]:
        return [
            r for r in all_runs(store) if r.id.startswith(who) and r.status is RunStatus.running
        ]

    # whoever runs the slow job: kill it while its run is in flight
    wait_for(lambda: running_of(first) or running_of(second), 20, "a running run of slow")
    victim = first if running_of(first) else second
    survivor = second if victim == first else first
    killed_at = time.time()
    w.procs[victim].send_signal(signal.SIGKILL)
    w.procs[victim].wait(10)
    wait_for(lambda: not running_of(victim), 20, "the killed scheduler's runs to be crashed")
    crashed = [
        r for r in all_runs(store) if r.id.startswith(victim) and r.status is RunStatus.crashed
    ]
    assert crashed
    # the survivor carries on with every job, the slow one too
    wait_for(
        lambda: all(
            any(r.job_name == n and r.scheduled_ts > killed_at + 3 for r in all_runs(store))
            for n in names
        ),
        30,
        "runs of every job after the kill",
    )
    wait_for(
        lambda: any(r.job_name == "slow" and r.id.startswith(survivor) for r in all_runs(store)),
        30,
        "the survivor running the slow job",
    )
    stopped = time.time()
    w.stop_all()
    runs = all_runs(store)
    check_exactly_once(store, runs, names, killed_at + 3, stopped - 1.5)
    seen = collections.Counter((r.job_name, r.scheduled_ts) for r in runs)
    assert max(seen.values()) == 1


def test_a_pause_through_one_scheduler_is_seen_by_the_others(
    shared: tuple[str, str], workers: object
) -> None:
    url, prefix = shared
    store = add_jobs(url, prefix, 5)
    w: Workers = workers(lease=5.0)  # type: ignore[operator]
    w.spawn()
    w.spawn()
    wait_for(lambda: min(fires_per_job(store).values(), default=0) >= 2, 20, "fires of each job")
    # a third scheduler, in this process, pauses a job: the processes see it in the store
    OPENED.append(SQLAlchemyJobStore(url, table_prefix=prefix))
    pauser = Scheduler(store=OPENED[-1], owner=OWNER)
    pauser.start()
    try:
        pauser.pause_job("job000")
    finally:
        pauser.shutdown()
    paused_at = time.time()
    # runs of job000 handed over before the pause may still end; none is scheduled after it
    wait_for(
        lambda: all(
            any(r.job_name == n and r.scheduled_ts > paused_at + 2 for r in all_runs(store))
            for n in ("job001", "job002")
        ),
        20,
        "the other jobs to go on",
    )
    late = [r for r in all_runs(store) if r.job_name == "job000" and r.scheduled_ts > paused_at + 1]
    assert not late, late


def test_the_fires_are_shared_out_once_the_schedulers_know_each_other(
    shared: tuple[str, str], workers: object
) -> None:
    url, prefix = shared
    store = add_jobs(url, prefix, 30)
    w: Workers = workers(lease=1.5)  # type: ignore[operator]
    ids = [w.spawn() for _ in range(3)]
    # they learn of each other from their beats (every lease / 3); from then on each fire
    # has a first choice among them (rendezvous hashing)
    since = time.time() + 1.5

    def later() -> list[Run]:
        return [r for r in all_runs(store) if r.scheduled_ts > since]

    wait_for(lambda: len(later()) >= 30 * 4, 30, "four rounds of fires after the beats")
    w.stop_all()
    share = collections.Counter(r.id.split("-")[0] for r in later())
    assert set(share) == set(ids), share
    assert min(share.values()) > 0.1 * sum(share.values()), share
    seen = collections.Counter((r.job_name, r.scheduled_ts) for r in all_runs(store))
    assert max(seen.values()) == 1
