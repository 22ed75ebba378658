"""The engine: one loop thread that fires jobs on time, and the public :class:`Scheduler` API.

How it works, in one paragraph: every job of this scheduler's owner has an in-memory
``_Entry`` (the stored :class:`Job`, its trigger, the resolved callable, its next fire time
and how many runs are in flight). Fire times sit in a heap. The ``nbsched-loop`` thread sleeps
on a condition until the earliest fire time (or a run's timeout, or the next look at the store
for outside changes: within 0.25 s of a write to an SQLite file, which the store reports,
else once a second) and wakes early when a job changes. When it wakes it pops every due fire
time, computes the job's next one, applies the misfire policy (grace, coalesce,
max_instances), hands :class:`RunRequest` s to the executors and moves on; nothing on that path
touches the database. Run records and next-run times go to the store in batches through
``_writer.RunWriter``.

Threads and locks (every thread is named ``nbsched-*`` and is a daemon, so none of them can
keep a program from exiting):

* ``self._cond`` guards all scheduling state (entries, heaps, in-flight runs). API methods
  take it briefly; the loop holds it while it dispatches a chunk of due fires, then releases
  it so that finishing workers are not starved during a large burst.
* Executors call :meth:`Scheduler._on_finished` from their own threads.
* Listeners are called outside the lock, on the thread that caused the event.

Faults: anything the loop raises (a store that is down or locked, a trigger that blows up) is
logged, shown by :meth:`Scheduler.status` and retried with backoff. The loop never dies with
the scheduler still claiming to run -- APScheduler 3's "zombie" (research/apscheduler.md
§3.3) and Airflow #32706.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from ._clock import SystemClock
from ._engine.writer import RunWriter
from .abc import ALL_OWNERS, Clock, Executor, JobStore, RunRequest, Trigger
from .errors import (
    ConflictingJobError,
    InvalidArgumentError,
    JobLookupError,
    NbschedError,
    SchedulerNotRunningError,
    TargetLookupError,
    did_you_mean,
)
from .events import (
    Event,
    JobAdded,
    JobBound,
    JobPaused,
    JobRemoved,
    JobResumed,
    JobUpdated,
    RunFinished,
    RunStarted,
    SchedulerFault,
    SchedulerRecovered,
    SchedulerStarted,
    SchedulerStopped,
)
from .executors import capture as _capture
from .executors.thread import ThreadJobExecutor
from .jobs import CellTarget, Job, JobOptions, Run, RunStatus, check_name, default_job_name
from .targets import callable_to_ref, is_importable_ref, ref_to_callable
from .triggers import parse_trigger
from .triggers.durations import parse_duration
from .triggers.registry import BrokenTrigger
from .triggers.zones import resolve_zone

__all__ = ["Scheduler"]

log = logging.getLogger("nbsched")

#: most due fires dispatched per pass while holding the lock
_CHUNK = 4096
#: how far ahead of their fire time runs are handed to executors that start them on time
#: themselves (``Executor.accepts_early``): the loop's work for a burst of due jobs is then
#: done before the burst, and at the fire time the workers only start bodies (seconds)
_LEAD = 0.1
#: ... or longer, when dispatching a burst takes longer: twice the last dispatch wave (the
#: passes in a row that dispatched something), shrinking by a tenth a wave, at most this
_LEAD_MAX = 1.0
#: how often a shared store is checked for changes made by other processes (seconds)
_WATCH_INTERVAL = 1.0
#: ... when the store tells us about writes itself (``JobStore.watch``): a look at least this
#: often all the same (a safety net: inotify reports every write), and at most every
#: _WATCH_MIN_GAP while writes keep coming
_WATCH_FALLBACK = 300.0
_WATCH_MIN_GAP = 0.25
#: how long looks in a row may find a change marker that does not match our own writes
#: (while we keep writing jobs) before we reload every job all the same (seconds)
_BEHIND_FOR = 10.0
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0

Resolver = Callable[[Job], "Callable[..., Any] | None"]

_RETRYABLE = frozenset({RunStatus.failed, RunStatus.timed_out, RunStatus.crashed})

#: the kwargs of every job that has none (one shared dict instead of one per job; never
#: mutated: jobs are values)
_NO_KWARGS: dict[str, Any] = {}


class _Entry:
    """Scheduling state of one job (internal; guarded by ``Scheduler._cond``)."""

    __slots__ = ("job", "func", "next_ts", "running", "executor", "early_until")

    def __init__(self, job: Job, func: Callable[..., Any] | None, executor: Executor) -> None:
        self.job = job
        self.func = func
        self.next_ts: float | None = None
        self.running = 0
        self.executor = executor
        #: the fire time of a run handed over early; the store keeps it as the job's next
        #: run time until then (see _take_next_run_times)
        self.early_until = 0.0


class _Waiter:
    __slots__ = ("event", "run")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.run: Run | None = None


def _definition(job: Job) -> tuple[Any, ...]:
    """What a job *is*, leaving out its next run time: two equal definitions mean nothing
    changed. Arguments are compared pickled, since user objects rarely define ``==``."""
    try:
        arguments: object = pickle.dumps((job.args, dict(job.kwargs)), protocol=5)
    except Exception:
        arguments = repr((job.args, job.kwargs))
    return (
        job.kind, job.target, job.trigger, job.executor, arguments, job.timeout,
        job.max_instances, job.coalesce, job.misfire_grace_time, job.retries, job.retry_delay,
        job.paused, job.parameters, job.owner,
    )


class Scheduler:
    """Runs jobs on schedule, in the background, and records every run.

    :param db_url: SQLAlchemy URL of the store (``"sqlite:///jobs.db"``); ``None`` keeps jobs
        in memory only
    :param store: a :class:`~nbsched.abc.JobStore` to use instead of ``db_url``
    :param timezone: IANA zone for schedule strings without one (default: this machine's)
    :param clock: source of time (tests pass ``nbsched.testing.FakeClock``)
    :param executors: extra or replacement executors by name; ``"thread"`` is always there and
        ``"process"`` is created on first use
    :param max_workers: size of the default thread and process pools
    :param owner: the notebook (or program) whose jobs this scheduler runs; jobs it adds are
        stamped with it, and jobs of other owners in a shared store are left alone
    :param resolver: turns jobs whose target is not importable (``"__main__:name"``,
        :class:`~nbsched.jobs.CellTarget`) into callables; returning ``None`` leaves the job
        *unbound* (kept, not run) until :meth:`bind_unbound` succeeds
    :param retention: runs kept per job in the history
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        store: JobStore | None = None,
        timezone: str | tzinfo | None = None,
        clock: Clock | None = None,
        executors: Mapping[str, Executor] | None = None,
        max_workers: int = 8,
        owner: str | None = None,
        resolver: Resolver | None = None,
        retention: int = 1000,
    ) -> None:
        if store is not None and db_url is not None:
            raise InvalidArgumentError("Pass either db_url or store, not both")
        if max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be at least 1, got {max_workers}")
        if retention < 1:
            raise InvalidArgumentError(f"retention must be at least 1 run, got {retention}")
        if store is None:
            store = _make_store(db_url, retention)
        self._store = store
        self._clock = clock or SystemClock()
        self._tz = resolve_zone(timezone)
        self.owner = owner
        self.max_workers = max_workers
        self._resolver = resolver
        self._cell_ns: dict[str, Any] = {"__name__": "__nbsched_cells__"}
        self._executors: dict[str, Executor] = {"thread": ThreadJobExecutor(max_workers)}
        self._executors.update(executors or {})

        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._unbound: set[str] = set()
        # Fire times: (ts, name). An item is stale, and skipped when popped, unless it is the
        # entry's current next_ts. Kept to two fields: with 10k jobs every byte counts.
        self._heap: list[tuple[float, str]] = []
        # Retries: (due_ts, seq, name, attempt, scheduled_ts)
        self._retries: list[tuple[float, int, str, int, float]] = []
        self._timeouts: list[tuple[float, str]] = []  # (deadline, run_id)
        self._inflight: dict[str, _Entry] = {}
        self._waiters: dict[str, _Waiter] = {}
        # Runs that finished, for the loop to settle (in-flight counts, retries): workers only
        # append here, so finishing a run never waits for the loop's lock. The items are
        # (run_id, status value, attempt, scheduled_ts, finished_ts): strings and numbers
        # only, which the garbage collector stops tracking. They may wait for the loop's next
        # pass for a while; tracked objects would pile up in its oldest generation and bring
        # on full collections, which stall every thread for milliseconds in a busy second.
        self._done: deque[tuple[str, str, int, float, float]] = deque()
        self._finishing: dict[str, _Entry] = {}  # run_id -> entry, until settled
        self._nrt_dirty: dict[str, float | None] = {}
        self._seq = itertools.count()
        self._run_prefix = os.urandom(5).hex() + "-"
        self._run_serial = itertools.count(1)
        # (callback, event types or None for all); _by_type caches who wants which type
        self._listeners: tuple[tuple[Callable[[Event], None], tuple[type, ...] | None], ...] = ()
        self._by_type: dict[type, tuple[Callable[[Event], None], ...]] = {}
        self._faults: dict[str, str] = {}
        self._wake_at: float | None = None  # deadline the loop sleeps until
        # requests the loop dispatched in this pass, handed to executors only at its end
        self._outbox: list[tuple[Executor, RunRequest]] | None = None
        # Fires handed over early only if nothing stands in the way: a job still running at
        # its max_instances, or an executor that cannot wait, is decided at its fire time.
        # Those wait here, out of the heap: (ts, name).
        self._lead = _LEAD if isinstance(self._clock, SystemClock) else 0.0
        self._lead_base = self._lead  # (0 with a fake clock: every step explicit)
        self._wave_start: float | None = None
        self._held: list[tuple[float, str]] = []
        self._early_until = 0.0  # the latest fire time handed over early

        self._running = False
        self._stopping = False
        self._loaded = False
        self._marker: object = None
        self._own_changes = 0  # job writes of ours since the marker was last read
        self._own_looked = 0  # _own_changes at the last look
        self._behind_since: float | None = None  # since when looks found it did not match
        self._watch = _WATCH_INTERVAL if store.is_shared else None
        self._next_watch = 0.0
        self._looked_at = 0.0  # the last look at the store (clock time)
        self._unwatch: Callable[[], None] | None = None  # stops the store's watch
        self._thread: threading.Thread | None = None
        self._unregister_exit: Callable[[], None] | None = None
        self._writer = RunWriter(
            store, self._take_next_run_times, self._writer_fault, self._clock, self._busy
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background loop. Idempotent.

        Jobs of this owner are loaded from the store; runs a dead process left ``running``
        are recorded ``crashed``. If the store cannot be read right now, the scheduler starts
        anyway, reports the fault in :meth:`status` and keeps trying.
        """
        with self._cond:
            if self._running:
                return
            self._running = True
            self._stopping = False
        self._store.open()
        if self._store.is_shared:
            # Before loading: a change made while we load is then not missed.
            self._unwatch = self._store.watch(self._store_changed)
            self._watch = _WATCH_INTERVAL if self._unwatch is None else _WATCH_FALLBACK
        try:
            self._load()
        except Exception as exc:  # e.g. the database is locked: the loop retries
            self._set_fault("store", f"loading jobs failed: {exc}")
        for executor in list(self._executors.values()):
            executor.start(self._clock, self._on_started, self._on_finished)
        _capture.install()
        self._writer.start()
        self._thread = threading.Thread(target=self._loop, name="nbsched-loop", daemon=True)
        self._thread.start()
        self._unregister_exit = _on_exit(self._shutdown_at_exit)
        self._emit(SchedulerStarted(timestamp=self._clock.time()))

    def shutdown(self, wait: bool = True, timeout: float = 1.0) -> None:
        """Stop the loop and the executors, record runs still in flight as ``cancelled``
        and write every pending record. Never blocks longer than about ``timeout``.

        :param wait: give running jobs up to ``timeout`` seconds to finish first
        """
        import time  # real time bounds the shutdown, whatever the clock says

        with self._cond:
            if not self._running:
                return
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        for executor in list(self._executors.values()):
            executor.shutdown(wait=wait, timeout=max(0.0, deadline - time.monotonic()))
        with self._cond:
            leftovers = list(self._inflight)
        for run_id in leftovers:  # an executor that broke its contract: still record it
            self._record_cancelled(run_id)
        self._writer.stop(max(0.1, deadline - time.monotonic()))
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        _capture.uninstall()
        if self._unregister_exit is not None:
            self._unregister_exit()
            self._unregister_exit = None
        with self._cond:
            self._running = False
        self._emit(SchedulerStopped(timestamp=self._clock.time()))

    def _shutdown_at_exit(self) -> None:
        self.shutdown(wait=False, timeout=0.5)

    def __enter__(self) -> Scheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`shutdown`."""
        return self._running

    @property
    def store(self) -> JobStore:
        """The job store."""
        return self._store

    @property
    def timezone(self) -> tzinfo:
        """Zone used for schedule strings without an explicit one, and for display."""
        return self._tz

    # ------------------------------------------------------------------ jobs

    def add_job(
        self,
        target: Callable[..., Any] | str | CellTarget,
        trigger: Trigger | str,
        *,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        executor: str = "thread",
        timeout: float | str | None = None,
        max_instances: int = 1,
        coalesce: bool = True,
        misfire_grace_time: float | str | None = None,
        retries: int = 0,
        retry_delay: float | str = 0,
        paused: bool = False,
        replace_existing: bool = False,
        parameters: Mapping[str, Any] | None = None,
    ) -> Job:
        """Add a job (or replace one of the same name with ``replace_existing``).

        Everything is checked before anything is stored: a rejected call changes nothing.

        :param target: a callable, ``"package.module:function"``, ``"__main__:name"`` (a
            function of the notebook, found through the resolver) or a
            :class:`~nbsched.jobs.CellTarget`
        :param trigger: a :class:`~nbsched.abc.Trigger` or a schedule string
            (``"every 10s"``, ``"*/5 * * * *"``, ``"every weekday at 09:30"``, ...)
        :raises TriggerParseError: the schedule string is not understood
        :raises InvalidArgumentError: an option has a bad value, or the schedule never fires
        :raises TargetLookupError: a ``"module:function"`` target cannot be imported
        :raises ConflictingJobError: the name is taken and ``replace_existing`` is false
        :returns: the stored job
        """
        args = tuple(args)
        kwargs = dict(kwargs) if kwargs else _NO_KWARGS
        timeout, misfire_grace_time, retry_delay = _check_options(
            timeout, max_instances, misfire_grace_time, retries, retry_delay
        )
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidArgumentError(f"parameters must be a mapping, got {parameters!r}")
        kind, ref, func = self._target(target)
        if name is None:
            name = default_job_name(kind, ref, owner=self.owner)
        _check_name(name)
        executor_obj = self._executor(executor)
        trig = self._trigger(trigger)
        anchor = datetime.fromtimestamp(self._clock.time(), self._tz)
        # "now" as the datetime says it (microseconds): an interval anchored at a rounded-up
        # "now" would otherwise see its own start as still ahead and fire at once.
        now = anchor.timestamp()
        trig = trig.anchor(anchor)
        first = trig.next_fire_ts(now)
        if first is None:
            raise InvalidArgumentError(
                f"The schedule {trig.describe()!r} never fires after now "
                "(is the date in the past?)"
            )
        options = JobOptions.get((
            kind, executor, args, kwargs, timeout, max_instances, coalesce, misfire_grace_time,
            retries, retry_delay, paused, dict(parameters) if parameters is not None else None,
            self.owner, False, self._tz, self._tz,
        ))
        job = Job.build(name, ref, trig, options, None if paused else first, now)
        if func is None and kind != "notebook":
            func = self._resolve(job)
            if func is None:
                raise TargetLookupError(_unbound_reason(job))
        executor_obj.validate(job, func)
        with self._cond:
            existing = self._entries.get(name)
        if existing is None and replace_existing:
            other = self._store.get_job(name)
            if other is not None and other.owner != self.owner:
                raise ConflictingJobError(
                    name,
                    f"A job named {name!r} belongs to {other.owner or 'another program'!r}; "
                    "choose another name",
                )
        elif existing is not None and not replace_existing:
            raise ConflictingJobError(name)
        with self._job_write():
            self._store.add_job(job, replace_existing=replace_existing)
        entry = _Entry(job, func, executor_obj)
        with self._cond:
            old = self._entries.get(name)
            self._entries[name] = entry
            self._unbound.discard(name)
            if not paused:
                # The stored row has this next run time already. (A job this one replaced
                # may have left another one for the writer: that one is overwritten.)
                self._schedule(entry, first, write=old is not None)
        event = JobUpdated if old is not None else JobAdded
        self._emit(event(timestamp=now, job_name=name, job=job))
        return job

    def get_jobs(self, *, all_owners: bool = False) -> list[Job]:
        """This owner's jobs sorted by name (with ``all_owners``, every job in the store)."""
        with self._cond:
            mine = {name: self._public(e) for name, e in self._entries.items()}
        if not all_owners:
            return [mine[n] for n in sorted(mine)]
        jobs = {job.name: job for job in self._store.get_jobs(ALL_OWNERS)}
        jobs.update(mine)
        return [jobs[n] for n in sorted(jobs)]

    def get_job(self, name: str) -> Job:
        """The job named ``name``.

        :raises JobLookupError: no such job of this owner
        """
        with self._cond:
            return self._public(self._entry(name))

    def pause_job(self, name: str) -> Job:
        """Stop firing ``name`` until :meth:`resume_job`; runs in flight continue."""
        with self._cond:
            entry = self._entry(name)
            job = replace(entry.job, paused=True)
        with self._job_write():
            self._store.update_job(replace(job, next_run_time=None))
        with self._cond:
            entry.job = job
            entry.next_ts = None
            self._nrt_dirty.pop(name, None)
        self._emit(JobPaused(timestamp=self._clock.time(), job_name=name))
        return self.get_job(name)

    def resume_job(self, name: str) -> Job:
        """Fire ``name`` again, from its next fire time after now."""
        now = self._clock.time()
        with self._cond:
            entry = self._entry(name)
            job = replace(entry.job, paused=False)
            nxt = job.trigger.next_fire_ts(now)
        nrt = None if nxt is None else datetime.fromtimestamp(nxt, self._tz)
        with self._job_write():
            self._store.update_job(replace(job, next_run_time=nrt))
        with self._cond:
            entry.job = job
            self._schedule(entry, nxt)
        self._emit(JobResumed(timestamp=now, job_name=name))
        return self.get_job(name)

    def remove_job(self, name: str) -> None:
        """Delete ``name`` and its run history. Runs in flight finish and are recorded."""
        with self._cond:
            self._entry(name)
        with self._job_write():
            self._store.remove_job(name)
        with self._cond:
            self._entries.pop(name, None)
            self._unbound.discard(name)
            self._nrt_dirty.pop(name, None)
        self._emit(JobRemoved(timestamp=self._clock.time(), job_name=name))

    def run_job(self, name: str) -> Run:
        """Run ``name`` now, outside its schedule, and return the finished run.

        :raises SchedulerNotRunningError: the scheduler is not started
        :raises TargetLookupError: the job is unbound
        """
        if not self._running or self._stopping:
            raise SchedulerNotRunningError(
                "The scheduler is not running; call start() first (or %load_ext nbsched)"
            )
        waiter = _Waiter()
        with self._cond:
            entry = self._entry(name)
            if entry.func is None and entry.job.kind != "notebook":
                raise TargetLookupError(_unbound_reason(entry.job))
            now = self._clock.time()
            run_id = self._start_run(entry, now, 0, now, waiter)
            if entry.job.timeout is not None:
                self._cond.notify()
        waiter.event.wait()
        assert waiter.run is not None and waiter.run.id == run_id
        return waiter.run

    def start_run(self, name: str) -> str:
        """Start a run of ``name`` now, outside its schedule, and return its id at once
        (:meth:`run_job` waits for the run; a web request must not).

        :raises SchedulerNotRunningError: the scheduler is not started
        :raises TargetLookupError: the job is unbound
        """
        if not self._running or self._stopping:
            raise SchedulerNotRunningError(
                "The scheduler is not running; call start() first (or %load_ext nbsched)"
            )
        with self._cond:
            entry = self._entry(name)
            if entry.func is None and entry.job.kind != "notebook":
                raise TargetLookupError(_unbound_reason(entry.job))
            now = self._clock.time()
            run_id = self._start_run(entry, now, 0, now)
            if entry.job.timeout is not None:
                self._cond.notify()
        return run_id

    def cancel_run(self, name_or_run_id: str) -> Run | None:
        """Stop a run in flight: the given run id, or the newest run of the given job.
        Returns the cancelled run, ``None`` if nothing of that name/id was running."""
        with self._cond:
            if name_or_run_id in self._inflight:
                run_id = name_or_run_id
            else:
                self._entry(name_or_run_id)  # JobLookupError for unknown names
                ids = [r for r, e in self._inflight.items() if e.job.name == name_or_run_id]
                if not ids:
                    return None
                run_id = ids[-1]
            entry = self._inflight[run_id]
            waiter = self._waiters.setdefault(run_id, _Waiter())
        if entry.executor.cancel(run_id, RunStatus.cancelled):
            waiter.event.wait(5.0)
        return waiter.run

    def get_runs(self, name: str | None = None, limit: int = 50) -> list[Run]:
        """Runs of one job (or of all this owner's jobs), newest first."""
        if name is not None:
            with self._cond:
                if name not in self._entries:
                    self._entry(name)
        self._writer.flush()
        return self._store.get_runs(name, owner=self.owner, limit=limit)

    def upcoming(self, limit: int = 10) -> list[tuple[datetime, Job]]:
        """The next ``limit`` fire times of this owner's jobs, soonest first."""
        with self._cond:
            entries = [e for e in self._entries.values() if e.next_ts is not None]
            soon = heapq.nsmallest(limit, entries, key=lambda e: e.next_ts)  # type: ignore[arg-type,return-value]
            return [
                (datetime.fromtimestamp(e.next_ts, self._tz), self._public(e))  # type: ignore[arg-type]
                for e in soon
            ]

    def bind_unbound(self) -> list[str]:
        """Try the resolver again for unbound jobs (after the notebook defined more names).
        Returns the names that are bound now; they fire from their stored schedule, their
        missed fire times handled by their misfire policy."""
        with self._cond:
            if not self._unbound:
                return []
            candidates = [self._entries[n] for n in self._unbound if n in self._entries]
        bound = []
        for entry in candidates:
            func = self._resolve(entry.job)
            if func is None:
                continue
            with self._cond:
                if self._entries.get(entry.job.name) is not entry:
                    continue
                entry.func = func
                self._unbound.discard(entry.job.name)
                if entry.next_ts is not None and not entry.job.paused:
                    self._push(entry, entry.next_ts)
            bound.append(entry.job.name)
        for name in bound:
            self._emit(JobBound(timestamp=self._clock.time(), job_name=name))
        return bound

    def refresh_from_store(self) -> None:
        """Pick up changes other processes made to this owner's jobs (pause, resume, remove,
        add). The loop does this by itself within about a second."""
        self._check_store(force=True)

    # ------------------------------------------------------------------ observing

    def add_listener(
        self,
        callback: Callable[[Event], None],
        events: type[Event] | tuple[type[Event], ...] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (see :mod:`nbsched.events`), or only for
        events of the given type(s): ``add_listener(cb, RunFinished)``. Listening to fewer
        types costs less: with nobody listening, run events are not even created.

        :returns: a function that removes the listener
        """
        if events is not None:
            types = events if isinstance(events, tuple) else (events,)
            if not types or not all(isinstance(t, type) and issubclass(t, Event) for t in types):
                raise InvalidArgumentError(
                    f"events must be event classes from nbsched.events, got {events!r}"
                )
        item = (callback, None if events is None else types)
        with self._cond:
            self._listeners = (*self._listeners, item)
            self._by_type = {}

        def remove() -> None:
            with self._cond:
                self._listeners = tuple(x for x in self._listeners if x is not item)
                self._by_type = {}

        return remove

    def _callbacks(self, cls: type) -> tuple[Callable[[Event], None], ...]:
        """The listeners that want events of class ``cls`` (lock-free; cached)."""
        by_type = self._by_type
        found = by_type.get(cls)
        if found is None:
            found = by_type[cls] = tuple(
                cb for cb, types in self._listeners if types is None or issubclass(cls, types)
            )
        return found

    def status(self) -> dict[str, Any]:
        """A snapshot: ``running``, ``healthy``, ``error`` (the fault, if any), job and run
        counts, the next fire time, the store and the owner."""
        with self._cond:
            pending = [e.next_ts for e in self._entries.values() if e.next_ts is not None]
            faults = dict(self._faults)
            loop_alive = self._thread is not None and self._thread.is_alive()
            if self._running and not self._stopping and not loop_alive:
                faults["loop"] = "the scheduler loop thread is not running"
            return {
                "running": self._running and not self._stopping,
                "healthy": not faults,
                "error": "; ".join(faults.values()) or None,
                "jobs": len(self._entries),
                "paused": sum(e.job.paused for e in self._entries.values()),
                "unbound": len(self._unbound),
                "running_runs": len(self._inflight),
                "next_run_time": (
                    datetime.fromtimestamp(min(pending), self._tz) if pending else None
                ),
                "pending_writes": self._writer.pending,
                "store": _describe_store(self._store),
                "owner": self.owner,
                "timezone": str(self._tz),
            }

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return (
            f"<Scheduler {state} owner={self.owner!r} jobs={len(self._entries)} "
            f"store={_describe_store(self._store)}>"
        )

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        backoff = _BACKOFF_MIN
        while not self._stopping:
            try:
                self._step()
            except Exception as exc:
                log.exception("nbsched scheduler loop failed; retrying in %.1f s", backoff)
                self._set_fault("loop", f"{type(exc).__name__}: {exc}")
                with self._cond:
                    if self._stopping:
                        return
                    self._clock.wait(self._cond, self._clock.time() + backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            else:
                if "loop" in self._faults:
                    self._clear_fault("loop")
                backoff = _BACKOFF_MIN

    def _step(self) -> None:
        """One pass: (re)load, look at the store, dispatch due fires or sleep."""
        clock = self._clock
        if not self._loaded:
            self._load()
        if self._watch is not None and clock.time() >= self._next_watch:
            # A store that cannot be read (down, locked) must not stop jobs from firing:
            # dispatching never needs it. Report the fault and look again next interval.
            try:
                self._check_store()
            except Exception as exc:
                self._set_fault("store", f"reading the store failed: {exc}")
            else:
                if "store" in self._faults:
                    self._clear_fault("store")
        events: list[Event] = []
        outbox: list[tuple[Executor, RunRequest]] = []
        with self._cond:
            if self._stopping:
                return
            self._settle_finished()
            now = clock.time()
            # Requests are handed over only after the whole pass: a worker woken mid-pass
            # would take the GIL from the loop every 5 ms (sys.getswitchinterval()) and slow
            # the rest of a burst down; bodies then start late, the last ones most.
            self._outbox = outbox
            try:
                dispatched = self._dispatch_due(now, events)
            finally:
                self._outbox = None
            expired = self._expired_timeouts(now)
            if dispatched and self._wave_start is None:
                self._wave_start = now
            if not dispatched and not expired and not events:
                self._end_wave(now)
                self._wake_at = self._next_deadline()
                clock.wait(self._cond, self._wake_at)
                self._wake_at = None
        for executor, request in outbox:
            executor.submit(request)
        for run_id in expired:
            entry = self._inflight.get(run_id)
            if entry is not None:
                entry.executor.cancel(run_id, RunStatus.timed_out)
        for event in events:
            self._emit(event)

    def _end_wave(self, now: float) -> None:
        """A dispatch wave ended: make the lead long enough for the next one (see
        :data:`_LEAD_MAX`), so that a burst of ten thousand runs is handed over before its
        fire time too."""
        start, self._wave_start = self._wave_start, None
        if start is not None and self._lead_base:
            self._lead = min(_LEAD_MAX, max(self._lead_base, 2 * (now - start), 0.9 * self._lead))

    def _next_deadline(self) -> float | None:
        times = []
        if self._heap:
            times.append(self._heap[0][0] - self._lead)
        if self._held:
            times.append(min(ts for ts, _ in self._held))
        if self._retries:
            times.append(self._retries[0][0])
        if self._timeouts:
            times.append(self._timeouts[0][0])
        if self._watch is not None:
            times.append(self._next_watch)
        return min(times) if times else None

    def _dispatch_due(self, now: float, events: list[Event]) -> int:
        """Fire what is due, or due within the lead time (at most ``_CHUNK``). Called with
        the lock held."""
        heap = self._heap
        entries = self._entries
        held = self._held
        for item in held:  # decided afresh: they may be due now, or free to go early
            heapq.heappush(heap, item)
        held.clear()
        limit = now + self._lead
        count = 0
        while heap and heap[0][0] <= limit and count < _CHUNK:
            due, name = heapq.heappop(heap)
            entry = entries.get(name)
            if entry is None or entry.next_ts != due or entry.job.paused:
                continue  # removed, rescheduled (resume, update, duplicate) or paused
            if entry.func is None and entry.job.kind != "notebook":
                continue  # unbound: waits for bind_unbound(), which pushes it again
            if due > now and (
                entry.running >= entry.job.options.max_instances
                or not entry.executor.accepts_early
            ):
                held.append((due, name))
                continue
            count += 1
            self._fire(entry, due, now, events)
        retries = self._retries
        while retries and retries[0][0] <= now and count < _CHUNK:
            _, _, name, attempt, scheduled = heapq.heappop(retries)
            entry = entries.get(name)
            if entry is None or entry.job.paused or entry.func is None:
                continue
            count += 1
            self._start_run(entry, scheduled, attempt, now)
        return count

    def _fire(self, entry: _Entry, ts: float, now: float, events: list[Event]) -> None:
        """Advance ``entry`` past fire time ``ts`` and run it, unless the misfire policy or
        ``max_instances`` says otherwise -- in which case the run is *recorded* as ``missed``
        or ``skipped``, never dropped silently."""
        job = entry.job
        options = job.options
        nxt = job.trigger.next_fire_ts(ts)
        if nxt is not None and nxt <= now and options.coalesce:
            # Several fire times passed (the process slept, or the loop fell behind): run once
            # and record the rest as one coalesced "missed" entry.
            skipped_from = nxt
            nxt = job.trigger.next_fire_ts(now)
            self._record(
                entry, skipped_from, RunStatus.missed, events,
                f"Coalesced: the fire times from {_fmt(skipped_from, self._tz)} until now were "
                f"missed and folded into the run for {_fmt(ts, self._tz)} (coalesce=True)",
            )
        # (without coalesce, a next fire time that is already due fires on the next pass)
        entry.next_ts = nxt
        if nxt is not None:
            self._push(entry, nxt)
        self._nrt_dirty[job.name] = nxt
        late = now - ts
        grace = options.misfire_grace_time
        if grace is not None and late > grace:
            self._record(
                entry, ts, RunStatus.missed, events,
                f"Missed: the scheduler got to it {late:.3f} s after its fire time, more than "
                f"misfire_grace_time={grace}",
            )
        elif entry.running >= options.max_instances:
            self._record(
                entry, ts, RunStatus.skipped, events,
                f"Skipped: {entry.running} run(s) still in flight (max_instances="
                f"{options.max_instances})",
            )
        else:
            self._start_run(entry, ts, 0, now)

    def _start_run(
        self, entry: _Entry, scheduled: float, attempt: int, now: float,
        waiter: _Waiter | None = None,
    ) -> str:
        """Hand one run to the executor. Called with the lock held."""
        job = entry.job
        options = job.options
        run_id = f"{self._run_prefix}{next(self._run_serial):x}"
        request = RunRequest(
            run_id, job.name, entry.func, job.target, options.args, options.kwargs,
            scheduled, options.timeout, attempt, options.owner,
        )
        if scheduled > now:  # handed over early: the executor waits for the fire time
            request.not_before = entry.early_until = scheduled
            if scheduled > self._early_until:
                self._early_until = scheduled
        entry.running += 1
        self._inflight[run_id] = entry
        if waiter is not None:
            self._waiters[run_id] = waiter
        if options.timeout is not None:
            heapq.heappush(self._timeouts, (max(now, scheduled) + options.timeout, run_id))
        self._writer.started(request)
        if self._outbox is not None:
            self._outbox.append((entry.executor, request))
        else:
            entry.executor.submit(request)
        return run_id

    def _record(
        self, entry: _Entry, ts: float, status: RunStatus, events: list[Event], why: str
    ) -> None:
        """Record a run that did not start (missed / skipped)."""
        job = entry.job
        run = Run(
            id=f"{self._run_prefix}{next(self._run_serial):x}",
            job_name=job.name,
            status=status,
            scheduled_ts=ts,
            finished_ts=self._clock.time(),
            error=why,
            owner=job.owner,
        )
        self._writer.finished(run)
        if self._callbacks(RunFinished):
            events.append(RunFinished(timestamp=run.finished_ts, job_name=job.name, run=run))  # type: ignore[arg-type]

    def _expired_timeouts(self, now: float) -> list[str]:
        timeouts = self._timeouts
        expired = []
        while timeouts and timeouts[0][0] <= now:
            _, run_id = heapq.heappop(timeouts)
            if run_id in self._inflight:
                expired.append(run_id)
        return expired

    def _schedule(self, entry: _Entry, ts: float | None, *, write: bool = True) -> None:
        """Set the next fire time of ``entry`` (lock held) and wake the loop if it is sooner
        than what it sleeps for; the writer stores it, unless ``write`` is false (the store
        has it already)."""
        entry.next_ts = ts
        if ts is not None and (entry.func is not None or entry.job.kind == "notebook"):
            self._push(entry, ts)
        if write:
            self._nrt_dirty[entry.job.name] = ts
            self._writer.poke()

    def _push(self, entry: _Entry, ts: float) -> None:
        heapq.heappush(self._heap, (ts, entry.job.name))
        if self._wake_at is None or ts < self._wake_at:
            self._cond.notify()

    # ------------------------------------------------------------------ executor callbacks

    def _on_started(self, request: RunRequest) -> str | None:
        if request.not_before is not None:
            # Handed over early: its job may have been paused or removed since (lock-free
            # reads; the API methods change these under the lock before they return).
            entry = self._inflight.get(request.run_id)
            if entry is not None:
                if self._entries.get(request.job_name) is not entry:
                    return "Cancelled: the job was removed or replaced before this fire time"
                if entry.job.paused:
                    return "Cancelled: the job was paused before this fire time"
        callbacks = self._callbacks(RunStarted)
        if callbacks:
            event = RunStarted(
                timestamp=request.started_ts or self._clock.time(),
                job_name=request.job_name,
                run_id=request.run_id,
                scheduled_ts=request.scheduled_ts,
            )
            for callback in callbacks:
                self._call(callback, event)
        return None

    def _on_finished(
        self, request: RunRequest, status: RunStatus, output: str, error: str | None,
        finished_ts: float,
    ) -> None:
        run = Run(
            id=request.run_id,
            job_name=request.job_name,
            status=status,
            scheduled_ts=request.scheduled_ts,
            started_ts=request.started_ts,
            finished_ts=finished_ts,
            output=output,
            error=error,
            attempt=request.attempt,
            owner=request.owner,
        )
        self._writer.finished(run)
        # No lock here: dict.pop and deque.append are atomic, and the loop thread settles the
        # bookkeeping before its next dispatch. With thousands of runs a second, workers that
        # queued for the loop's lock after every run were the bottleneck.
        run_id = request.run_id
        entry = self._inflight.pop(run_id, None)
        waiter = self._waiters.pop(run_id, None)
        if entry is not None:
            self._finishing[run_id] = entry
            self._done.append(  # (_value_: the plain str; .value is a slow property)
                (run_id, status._value_, request.attempt, request.scheduled_ts, finished_ts)
            )
            if status in _RETRYABLE and request.attempt < entry.job.retries:
                with self._cond:  # the loop may be asleep: it has a retry to schedule
                    self._cond.notify()
        if status is not RunStatus.succeeded:
            log.info("nbsched: run of %r %s", request.job_name, status.value)
        if waiter is not None:
            waiter.run = run
            waiter.event.set()
        callbacks = self._callbacks(RunFinished)
        if callbacks:
            event = RunFinished(timestamp=finished_ts, job_name=request.job_name, run=run)
            for callback in callbacks:
                self._call(callback, event)

    def _settle_finished(self) -> None:
        """Account for finished runs (loop thread, lock held): in-flight counts, retries."""
        done, finishing = self._done, self._finishing
        while done:
            run_id, status, attempt, scheduled_ts, finished_ts = done.popleft()
            entry = finishing.pop(run_id)
            entry.running -= 1
            job = entry.job
            if (
                status in _RETRYABLE
                and attempt < job.retries
                and not self._stopping
                and self._entries.get(job.name) is entry
            ):
                heapq.heappush(
                    self._retries,
                    (
                        finished_ts + job.retry_delay, next(self._seq), job.name,
                        attempt + 1, scheduled_ts,
                    ),
                )

    def _record_cancelled(self, run_id: str) -> None:
        with self._cond:
            entry = self._inflight.get(run_id)
        if entry is None:
            return
        request = RunRequest(
            run_id, entry.job.name, None, entry.job.target, (), {}, self._clock.time(),
            None, 0, entry.job.owner,
        )
        self._on_finished(request, RunStatus.cancelled, "", "the scheduler shut down", self._clock.time())

    # ------------------------------------------------------------------ store

    def _load(self) -> None:
        """Read this owner's jobs from the store (at start, and again after a failed start)."""
        store = self._store
        now = self._clock.time()
        store.finish_stale_runs(
            self.owner, RunStatus.crashed,
            "The process running it ended before the run finished", now,
        )
        with self._cond:
            own = self._own_changes  # (jobs added before the loop's first pass)
        marker = store.change_marker()
        jobs = store.get_jobs(self.owner)
        with self._cond:
            for job in jobs:
                if job.name not in self._entries:
                    self._adopt(job)
            self._marker = marker
            self._own_changes -= own
            self._own_looked = 0
            self._behind_since = None
            self._loaded = True
        if "store" in self._faults:
            self._clear_fault("store")

    def _adopt(self, job: Job) -> _Entry:
        """Create the entry of a job read from the store (lock held)."""
        try:
            executor = self._executor(job.executor)
        except InvalidArgumentError:
            executor = self._executors["thread"]
        func = None if job.kind == "notebook" else self._resolve(job)
        entry = _Entry(job, func, executor)
        self._entries[job.name] = entry
        if func is None and job.kind != "notebook":
            self._unbound.add(job.name)
        if isinstance(job.trigger, BrokenTrigger):
            # Part of the stored job could not be read (see the trigger's reason): keep it
            # listed so it can be fixed or removed, but never fire it with half its state.
            log.warning("nbsched: job %r is not scheduled: %s", job.name, job.trigger.reason)
        elif not job.paused and job.next_ts is not None:
            entry.next_ts = job.next_ts
            if func is not None or job.kind == "notebook":
                self._push(entry, entry.next_ts)
        return entry

    @contextlib.contextmanager
    def _job_write(self) -> Iterator[None]:
        """A job write of ours (it moves the store's change marker by one when it commits).
        Counted *before* it commits: a look at the store between the commit and the count
        would take the write for another process's and reload every job (the store's watch
        makes looks come soon after writes). Not counted if it fails."""
        with self._cond:
            self._own_changes += 1
        try:
            yield
        except BaseException:
            with self._cond:
                self._own_changes -= 1
            raise

    def _store_changed(self) -> None:
        """The store saw a write (``JobStore.watch``; ours or another process's): look at it
        soon, within :data:`_WATCH_MIN_GAP` of the last look."""
        with self._cond:
            due = self._looked_at + _WATCH_MIN_GAP
            if due < self._next_watch:
                self._next_watch = due
                if self._wake_at is None or due < self._wake_at:
                    self._cond.notify()

    def _check_store(self, force: bool = False) -> None:
        """Reconcile with changes other processes made to the store (cheap when none)."""
        self._looked_at = now = self._clock.time()
        self._next_watch = now + (self._watch or _WATCH_INTERVAL)
        with self._cond:
            own = self._own_changes  # (before the marker: what it counts, the marker shows)
        marker = self._store.change_marker()
        if not force:
            if marker == self._marker:
                return
            if isinstance(marker, int) and isinstance(self._marker, int):
                # Adding ten thousand jobs used to reload them all once a second meanwhile.
                changes = marker - self._marker
                recent, self._own_looked = own - self._own_looked, own
                if changes == own:  # every change since the last look was ours
                    with self._cond:
                        self._own_changes -= own
                        self._marker = marker
                    self._own_looked = 0
                    self._behind_since = None
                    return
                if self._behind_since is None:
                    self._behind_since = now
                if (recent or changes < own) and now - self._behind_since < _BEHIND_FOR:
                    # We wrote jobs since the last look, or the marker does not show all
                    # of our writes yet (one is being committed, or a store cached the
                    # marker briefly): the counts cannot tell. Look again next time rather
                    # than reload for nothing; once our writes pause, they agree or show
                    # that another process wrote.
                    return
        jobs = {job.name: job for job in self._store.get_jobs(self.owner)}
        events: list[Event] = []
        now = self._clock.time()
        self._own_looked = 0
        self._behind_since = None
        with self._cond:
            self._marker = marker
            self._own_changes -= own
            for name in [n for n in self._entries if n not in jobs]:
                self._entries.pop(name)
                self._unbound.discard(name)
                events.append(JobRemoved(timestamp=now, job_name=name))
            for name, job in jobs.items():
                entry = self._entries.get(name)
                if entry is None:
                    self._adopt(job)
                    events.append(JobAdded(timestamp=now, job_name=name, job=job))
                    continue
                if _definition(job) == _definition(entry.job):
                    continue
                was_paused = entry.job.paused
                entry.job = job
                if job.paused:
                    entry.next_ts = None
                    events.append(JobPaused(timestamp=now, job_name=name))
                else:
                    nrt = job.next_ts
                    if nrt is None or was_paused and nrt <= now:
                        nrt = job.trigger.next_fire_ts(now)
                    self._schedule(entry, nrt)
                    events.append(
                        JobResumed(timestamp=now, job_name=name)
                        if was_paused
                        else JobUpdated(timestamp=now, job_name=name, job=job)
                    )
        for event in events:
            self._emit(event)

    def _busy(self) -> bool:
        """Runs are waiting for a worker (the writer lets them go first)."""
        return any(executor.backlog() for executor in list(self._executors.values()))

    def _take_next_run_times(self) -> dict[str, float | None]:
        """The writer's share of next-run times. A job whose run was handed over early keeps
        that run's fire time in the store until it comes: were the process to die just
        before it, the restarted scheduler still finds it due (no fire time is lost)."""
        with self._cond:
            dirty, self._nrt_dirty = self._nrt_dirty, {}
            now = self._clock.time()
            if self._early_until > now:
                entries = self._entries
                later = {
                    name: ts for name, ts in dirty.items()
                    if (e := entries.get(name)) is not None and e.early_until > now
                }
                for name in later:
                    del dirty[name]
                self._nrt_dirty = later
        return dirty

    # ------------------------------------------------------------------ faults and events

    def _set_fault(self, where: str, message: str) -> None:
        with self._cond:
            new = self._faults.get(where) != message
            self._faults[where] = message
        if new:
            self._emit(SchedulerFault(timestamp=self._clock.time(), error=message))

    def _clear_fault(self, where: str) -> None:
        with self._cond:
            had = self._faults.pop(where, None)
            healthy = not self._faults
        if had is not None and healthy:
            self._emit(SchedulerRecovered(timestamp=self._clock.time()))

    def _writer_fault(self, message: str | None) -> None:
        if message is None:
            self._clear_fault("writer")
        else:
            self._set_fault("writer", message)

    def _emit(self, event: Event) -> None:
        for callback in self._callbacks(type(event)):
            self._call(callback, event)

    @staticmethod
    def _call(callback: Callable[[Event], None], event: Event) -> None:
        try:
            callback(event)
        except Exception:
            log.exception("nbsched: listener %r failed on %r", callback, event)

    # ------------------------------------------------------------------ helpers

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise JobLookupError(name, self._entries)
        return entry

    def _public(self, entry: _Entry) -> Job:
        job = entry.job
        options = job.options
        unbound = entry.func is None and options.kind != "notebook"
        if options.unbound != unbound or options.next_tz is not self._tz:
            options = options.replace(unbound=unbound, next_tz=self._tz)
        return Job.build(job.name, job.target, job.trigger, options, entry.next_ts, job.created_ts)

    def _executor(self, name: str) -> Executor:
        executor = self._executors.get(name)
        if executor is not None:
            return executor
        if name == "process":
            from .executors.process import ProcessJobExecutor

            executor = ProcessJobExecutor(self.max_workers)
            self._executors[name] = executor
            if self._running:
                executor.start(self._clock, self._on_started, self._on_finished)
            return executor
        known = sorted({*self._executors, "process"})
        raise InvalidArgumentError(
            f"Unknown executor {name!r}{did_you_mean(name, known)}; choose one of {known}"
        )

    def _trigger(self, trigger: Trigger | str) -> Trigger:
        if isinstance(trigger, Trigger):
            return trigger
        if isinstance(trigger, str):
            return parse_trigger(trigger, timezone=self._tz)
        raise InvalidArgumentError(
            f"trigger must be a schedule string or a Trigger, got {type(trigger).__name__}"
        )

    def _target(
        self, target: Callable[..., Any] | str | CellTarget
    ) -> tuple[Any, str, Callable[..., Any] | None]:
        """(kind, stored reference, callable if already known)."""
        if isinstance(target, CellTarget):
            try:
                compile(target.source, "<nbsched cell>", "exec")
            except SyntaxError as exc:
                raise InvalidArgumentError(
                    f"The cell has a syntax error (line {exc.lineno}): {exc.msg}"
                ) from None
            return "cell", target.source, None
        if isinstance(target, str):
            if target.endswith(".ipynb"):
                raise InvalidArgumentError(
                    f"Notebook jobs ({target!r}) need the notebook executor, which this "
                    "version of nbsched does not have yet; schedule a function instead"
                )
            if is_importable_ref(target):
                return "callable", target, ref_to_callable(target)
            if target.startswith("__main__:") and target.partition(":")[2]:
                return "callable", target, None
            raise InvalidArgumentError(
                f"Invalid target {target!r}: expected a callable, 'package.module:function', "
                "'__main__:name' or a path ending in .ipynb"
            )
        if callable(target):
            try:
                ref = callable_to_ref(target)
            except TargetLookupError:
                if self._store.is_shared:
                    raise
                # memory-only store: nothing to restore later, any callable will do
                ref = f"{getattr(target, '__module__', '__main__')}:{getattr(target, '__qualname__', repr(target))}"
            return "callable", ref, target
        raise InvalidArgumentError(
            f"target must be a callable, a 'module:function' string or a CellTarget, "
            f"got {type(target).__name__}"
        )

    def _resolve(self, job: Job) -> Callable[..., Any] | None:
        """The callable of ``job``, or ``None`` if it cannot be found right now."""
        try:
            if job.kind == "callable" and is_importable_ref(job.target):
                return ref_to_callable(job.target)
            if self._resolver is not None:
                return self._resolver(job)
            if job.kind == "cell":
                code = compile(job.target, f"<nbsched cell {job.name}>", "exec")
                return lambda: exec(code, self._cell_ns)
            if job.kind == "callable":
                func = getattr(sys.modules.get("__main__"), job.target.partition(":")[2], None)
                return func if callable(func) else None
        except (NbschedError, SyntaxError, ImportError) as exc:
            log.info("nbsched: job %r is unbound: %s", job.name, exc)
        except Exception:
            log.exception("nbsched: resolving job %r failed", job.name)
        return None


# ---------------------------------------------------------------------- module helpers


def _make_store(db_url: str | None, retention: int) -> JobStore:
    if db_url is None:
        from .stores.memory import MemoryJobStore

        return MemoryJobStore(retention=retention)
    from .stores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(db_url, retention=retention)


def _describe_store(store: JobStore) -> str:
    describe = getattr(store, "describe", None)
    return describe() if callable(describe) else type(store).__name__


def _check_name(name: object) -> None:
    check_name(name)  # the one rule for job names (nbsched.jobs)


def _check_options(
    timeout: float | str | None,
    max_instances: int,
    grace: float | str | None,
    retries: int,
    delay: float | str,
) -> tuple[float | None, float | None, float]:
    """The durations as seconds (``"2 mins"`` as the magics read it), after checking all."""
    timeout_s = None if timeout is None else _duration(timeout, "timeout")
    if timeout_s is not None and timeout_s <= 0:
        raise InvalidArgumentError(f"timeout must be more than 0 seconds, got {timeout!r}")
    if not isinstance(max_instances, int) or isinstance(max_instances, bool) or max_instances < 1:
        raise InvalidArgumentError(f"max_instances must be an integer ≥ 1, got {max_instances!r}")
    grace_s = None if grace is None else _duration(grace, "misfire_grace_time")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidArgumentError(f"retries must be an integer ≥ 0, got {retries!r}")
    return timeout_s, grace_s, _duration(delay, "retry_delay")


def _duration(value: float | str, what: str) -> float:
    try:
        return parse_duration(value)
    except NbschedError as exc:  # the same error, saying which argument it was about
        raise type(exc)(f"{what}: {exc}") from None


def _unbound_reason(job: Job) -> str:
    if job.kind == "cell":
        return f"Job {job.name!r} is unbound: its cell code cannot run in this process"
    name = job.target.partition(":")[2]
    return (
        f"Job {job.name!r} is unbound: {name!r} is not defined here yet; "
        "run the cell that defines it"
    )


@lru_cache(maxsize=1024)
def _fmt(ts: float, tz: tzinfo) -> str:
    # (cached: the jobs of a burst share their fire times, and a restart over thousands of
    # overdue jobs writes two of them into each job's coalesced record)
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def _on_exit(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` once at interpreter exit (and at kernel shutdown, via _lifecycle)."""
    try:
        from ._exits import on_exit
    except ImportError:  # pragma: no cover - _lifecycle lands with the process executor
        import atexit

        atexit.register(callback)
        return lambda: atexit.unregister(callback)
    return on_exit(callback)
