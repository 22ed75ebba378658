"""MemoryJobStore: jobs and run history in dicts, gone when the process ends.

Used when ``Scheduler(db_url=None)`` and by tests. It keeps job objects as they are (arguments
are neither pickled nor copied), so a thread job may take arguments that cannot be pickled.

Costs, for a scheduler that writes thousands of runs a second and may hold 10k idle jobs:

* a job costs one dict entry; history structures exist only for jobs that have runs;
* a run is kept as a plain tuple of strings and numbers (:func:`_pack`), rebuilt as a
  :class:`~nbsched.jobs.Run` when read. Python's garbage collector stops tracking such tuples,
  so a history of 100k runs adds nothing to its full collections -- with ``Run`` objects it
  did, and a full collection landing on a busy second delayed every job due in it;
* the history of a job is a list sorted oldest to newest by the same key the SQL store sorts
  by (the packed tuple starts with it, so tuples sort by it as they are), so "the newest
  ``retention``" means the same thing in every store. New runs almost always sort last (one
  comparison and an append); replacing a run by id finds it by bisection; pruning drops a
  slice from the front. ``write_runs`` is therefore O(batch) in practice;
* a set of the ids still ``running`` makes ``finish_stale_runs`` O(running runs).
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from ..abc import ALL_OWNERS, JobStore
from ..errors import ConflictingJobError, JobLookupError
from ..jobs import Job, Run, RunStatus
from ._common import CRASHED_WHY, check_limit, check_retention, decide
from ._outputs import discard_outputs

__all__ = ["MemoryJobStore"]

_NO_START = float("-inf")


#: a run as this store keeps it: (scheduled_ts, started_ts or -inf, id, job_name, status
#: value, finished_ts, output, error, attempt, owner, output_path). The first three are the
#: oldest-to-newest order of runs: ``scheduled_ts``, then ``started_ts`` (a run that never
#: started sorts before one that did), then ``id`` (so that the order is total).
Packed = tuple[Any, ...]
_ID, _JOB, _OWNER, _OUTPUT_PATH = 2, 3, 9, 10
_STATUSES = {status.value: status for status in RunStatus}


def _pack(run: Run) -> Packed:
    started = run.started_ts
    return (
        run.scheduled_ts, _NO_START if started is None else started, run.id, run.job_name,
        run.status._value_, run.finished_ts, run.output, run.error, run.attempt, run.owner,
        run.output_path,
    )


def _unpack(p: Packed) -> Run:
    return Run(
        id=p[2], job_name=p[3], status=_STATUSES[p[4]], scheduled_ts=p[0],
        started_ts=None if p[1] == _NO_START else p[1], finished_ts=p[5], output=p[6],
        error=p[7], attempt=p[8], owner=p[9], output_path=p[10],
    )


def _owner_matches(owner: Any, value: str | None) -> bool:
    return owner is ALL_OWNERS or value == owner


class MemoryJobStore(JobStore):
    """Keeps jobs and runs in memory; every method is thread-safe (one lock).

    :param retention: how many runs to keep per job (the newest)
    """

    is_shared = False

    def __init__(self, *, retention: int = 1000) -> None:
        self.retention = check_retention(retention)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._runs: dict[str, Packed] = {}  # id -> run
        self._history: dict[str, list[Packed]] = {}  # job name -> runs, oldest first
        self._running: set[str] = set()  # ids of runs whose status is running
        # next-run times written after a job was stored. Kept apart (not as a replaced Job)
        # so that the store shares its Job objects with the scheduler: one copy per job.
        self._nrt: dict[str, float | None] = {}
        self._changes = 0
        # live or expired claims of fire times: name -> (holder, until, fire). Nothing else
        # shares this store; kept so that it meets the same contract as the SQL stores.
        self._claims: dict[str, tuple[str, float, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryJobStore(retention={self.retention})"

    def describe(self) -> str:
        """Where the jobs are, for status displays."""
        return "memory"

    def open(self) -> None:
        """Nothing to do; present for the contract."""

    def close(self) -> None:
        """Nothing to release; the data stays until the store is garbage-collected."""

    # -- jobs --------------------------------------------------------------------------------

    @staticmethod
    def _stored(job: Job, created_ts: float | None) -> Job:
        if job.unbound or job.created_ts != created_ts:
            options = job.options.replace(unbound=False) if job.unbound else job.options
            job = Job.build(job.name, job.target, job.trigger, options, job.next_ts, created_ts)
        return job

    def add_job(self, job: Job, *, replace_existing: bool = False) -> None:
        with self._lock:
            old = self._jobs.get(job.name)
            if old is not None and not replace_existing:
                raise ConflictingJobError(job.name)
            created = job.created_ts if old is None or old.created_ts is None else old.created_ts
            self._jobs[job.name] = self._stored(job, created)
            self._nrt.pop(job.name, None)
            self._claims.pop(job.name, None)
            self._changes += 1

    def update_job(self, job: Job) -> None:
        with self._lock:
            old = self._jobs.get(job.name)
            if old is None:
                raise JobLookupError(job.name, self._jobs)
            created = job.created_ts if old.created_ts is None else old.created_ts
            self._jobs[job.name] = self._stored(job, created)
            self._nrt.pop(job.name, None)
            self._changes += 1

    def remove_job(self, name: str) -> None:
        with self._lock:
            if name not in self._jobs:
                raise JobLookupError(name, self._jobs)
            del self._jobs[name]
            self._nrt.pop(name, None)
            self._claims.pop(name, None)
            for packed in self._history.pop(name, ()):
                del self._runs[packed[_ID]]
                self._running.discard(packed[_ID])
            self._changes += 1

    def _view(self, job: Job) -> Job:
        if job.name not in self._nrt:
            return job
        return Job.build(
            job.name, job.target, job.trigger, job.options, self._nrt[job.name], job.created_ts
        )

    def get_job(self, name: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(name)
            return None if job is None else self._view(job)

    def get_jobs(self, owner: Any = ALL_OWNERS) -> list[Job]:
        with self._lock:
            jobs = [self._view(j) for j in self._jobs.values() if _owner_matches(owner, j.owner)]
        jobs.sort(key=lambda j: j.name)
        return jobs

    def set_next_run_times(self, updates: Sequence[tuple[str, float | None]]) -> None:
        # Not a change for change_marker(): this is the scheduler's own bookkeeping (see
        # SQLAlchemyJobStore.change_marker).
        with self._lock:
            jobs, nrt = self._jobs, self._nrt
            for name, ts in updates:
                job = jobs.get(name)
                if job is None:
                    continue
                if ts == job.next_ts:  # e.g. just added: the job already says so
                    nrt.pop(name, None)
                else:
                    nrt[name] = ts
                claim = self._claims.get(name)
                if claim is not None and (ts is None or claim[2] < ts):
                    del self._claims[name]

    def forget(self, scheduler_id: str) -> None:
        """Release the claims of ``scheduler_id``."""
        with self._lock:
            for name in [n for n, c in self._claims.items() if c[0] == scheduler_id]:
                del self._claims[name]

    def claim_fires(
        self, claims: Mapping[str, float], owner_id: str, now: float, lease: float
    ) -> dict[str, float | None]:
        """The contract's claims (see ``JobStore.claim_fires``), under the store's lock."""
        lost: dict[str, float | None] = {}
        gone: set[str] = set()
        with self._lock:
            for name, ts in claims.items():
                job = self._jobs.get(name)
                if job is None:
                    lost[name] = None
                    continue
                next_ts = self._nrt.get(name, job.next_ts)
                holder, until, fire = self._claims.get(name, (None, None, None))
                ok, back, expired = decide(
                    ts, next_ts, job.paused, holder, until, fire, owner_id, now
                )
                if not ok:
                    lost[name] = back
                    continue
                self._claims[name] = (owner_id, now + lease, ts)
                if expired is not None:
                    gone.add(expired)
            for run_id in [i for i in self._running if i.split("-", 1)[0] in gone]:
                run = _unpack(self._runs[run_id])
                self._put_run(dataclasses.replace(
                    run, status=RunStatus.crashed, error=CRASHED_WHY, finished_ts=now
                ))
        return lost

    # -- runs --------------------------------------------------------------------------------

    def write_runs(self, runs: Sequence[Run]) -> None:
        with self._lock:
            touched: set[str] = set()
            for run in runs:
                self._put_run(run)
                touched.add(run.job_name)
            gone: list[str] = []
            for name in touched:
                gone += self._prune(name)
        if gone:
            discard_outputs(gone)  # (files of pruned runs; outside the lock)

    def _put_run(self, run: Run) -> None:
        new = _pack(run)
        old = self._runs.get(run.id)
        if old is not None:
            history = self._history[old[_JOB]]
            i = bisect_left(history, old)
            if old[:4] == new[:4]:
                history[i] = new  # the usual case: same run, new status
            else:
                del history[i]
                if not history:
                    del self._history[old[_JOB]]
                self._insert(new)
        else:
            self._insert(new)
        self._runs[run.id] = new
        if run.status is RunStatus.running:
            self._running.add(run.id)
        else:
            self._running.discard(run.id)

    def _insert(self, packed: Packed) -> None:
        history = self._history.get(packed[_JOB])
        if history is None:
            self._history[packed[_JOB]] = [packed]
        elif history[-1] < packed:
            history.append(packed)  # almost always: runs are written in time order
        else:
            insort(history, packed)

    def _prune(self, name: str) -> list[str]:
        """Drop the runs of ``name`` beyond retention; returns their output files."""
        history = self._history.get(name)
        if history is None:
            return []
        excess = len(history) - self.retention
        gone: list[str] = []
        if excess > 0:
            for packed in history[:excess]:
                del self._runs[packed[_ID]]
                self._running.discard(packed[_ID])
                if packed[_OUTPUT_PATH]:
                    gone.append(packed[_OUTPUT_PATH])
            del history[:excess]
        return gone

    def get_runs(
        self, job_name: str | None = None, *, owner: Any = ALL_OWNERS, limit: int = 50
    ) -> list[Run]:
        check_limit(limit)
        with self._lock:
            newest_first: Iterable[Packed]
            if job_name is not None:
                newest_first = reversed(self._history.get(job_name, ()))
            else:
                histories: Iterable[list[Packed]] = self._history.values()
                if owner is ALL_OWNERS:
                    # Only a job whose newest run is among the ``limit`` newest newest-runs
                    # can have a run in the answer: merge those few instead of every job.
                    histories = heapq.nlargest(limit, histories, key=lambda h: h[-1])
                newest_first = heapq.merge(*(reversed(h) for h in histories), reverse=True)
            matching = (p for p in newest_first if _owner_matches(owner, p[_OWNER]))
            return [_unpack(p) for p in islice(matching, limit)]

    def last_runs(
        self, job_names: Sequence[str] | None = None, *, owner: Any = ALL_OWNERS
    ) -> dict[str, Run]:
        with self._lock:
            if job_names is None:
                names: Iterable[str] = [
                    n for n, j in self._jobs.items() if _owner_matches(owner, j.owner)
                ]
            else:
                names = [
                    n for n in job_names
                    if (j := self._jobs.get(n)) is not None and _owner_matches(owner, j.owner)
                ]
            newest = {n: h[-1] for n in names if (h := self._history.get(n))}
        return {n: _unpack(p) for n, p in newest.items()}

    def finish_stale_runs(
        self, owner: Any, status: RunStatus, error: str, now: float, spare: Sequence[str] = ()
    ) -> int:
        alive = set(spare)
        with self._lock:
            stale = [
                _unpack(self._runs[i])
                for i in self._running
                if _owner_matches(owner, self._runs[i][_OWNER]) and i.split("-", 1)[0] not in alive
            ]
            for run in stale:
                self._put_run(dataclasses.replace(run, status=status, error=error, finished_ts=now))
            return len(stale)

    # -- change detection -------------------------------------------------------------------

    def change_marker(self) -> int:
        """A counter of job additions, updates and removals (``set_next_run_times`` does not
        count: it is the scheduler's own bookkeeping)."""
        return self._changes
