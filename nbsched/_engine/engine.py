"""The engine behind :class:`nbsched.Scheduler`: the jobs of one owner, kept in step with the
store, fired by the loop, run by the executors, recorded by the run writer.

The facade checks arguments and builds values; this class owns the state and the threads:

* :class:`~.loop.Loop` -- fire times, dispatch, retries, timeouts (``nbsched-loop``);
* :class:`~.sync.StoreSync` -- loading jobs, and looking for changes other processes made;
* :class:`~.writer.RunWriter` -- run records and next-run times, written in batches
  (``nbsched-writer``);
* :class:`~.listeners.Listeners` and :class:`~.listeners.Faults` -- who hears what happens;
* :class:`~.resolve.Targets` -- what targets are, and finding their callables again.

Executors and stores are used through their contracts (``nbsched.abc``) only.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any

from ..abc import ALL_OWNERS, Clock, Executor, JobStore
from ..errors import (
    InvalidArgumentError,
    JobLookupError,
    SchedulerNotRunningError,
    TargetLookupError,
    did_you_mean,
)
from ..events import (
    Event,
    JobAdded,
    JobBound,
    JobPaused,
    JobRemoved,
    JobResumed,
    JobUpdated,
    SchedulerStarted,
    SchedulerStopped,
)
from ..executors import capture as _capture
from ..jobs import Job, Run, RunStatus
from .entry import Entry, Waiter
from .history import RunHistory
from .listeners import Faults, Listeners
from .loop import MAX_ABANDONED, Loop
from .resolve import Resolver, Targets, unbound_reason
from .sync import StoreSync
from .writer import RunWriter

__all__ = ["Engine"]

log = logging.getLogger("nbsched")

#: makes the process executor when a job first asks for it (given by the facade, which
#: knows the concrete class; the engine only knows the Executor contract)
ExecutorFactory = Callable[[str, int], "Executor | None"]


class Engine:
    """Everything a :class:`~nbsched.Scheduler` does, behind its checks (see the module doc).

    :param executors: the executors by name (``"thread"`` among them)
    :param make_executor: creates an executor on first use by name (``None``: no such one)
    :param lead: how far ahead of their fire times runs go to executors that can hold them
    :param lease_seconds: how long a claim on a fire (a shared store) holds if this scheduler
        dies before recording it; then another scheduler takes it over
    """

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        tz: tzinfo,
        owner: str | None,
        executors: dict[str, Executor],
        make_executor: ExecutorFactory,
        max_workers: int,
        resolver: Resolver | None,
        lead: float,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tz = tz
        self.owner = owner
        self.max_workers = max_workers
        self.targets = Targets(resolver, store.is_shared)
        self.listeners = Listeners()
        self.faults = Faults(self.listeners, clock)
        self._executors = executors
        self._make_executor = make_executor
        self.writer = RunWriter(
            store, self._take_next_run_times, self.faults.writer, clock, self._busy,
            self._cover,
        )
        self.loop = loop = Loop(
            clock, tz, self.writer, self.listeners, self.faults, lead,
            self._before_pass, self._next_look, self._stop_abandoned,
            store if store.is_shared else None, lease_seconds, self._wake,
        )
        self.sync = StoreSync(
            store, clock, owner, loop, self.targets.resolve, self._executor_of,
            self.listeners.emit, loop.scheduler_id, lease_seconds, self._working,
        )
        self.history = RunHistory(store, self.writer, owner)
        self.running = False
        #: jobs the engine paused itself, and why (runs abandoned in threads)
        self._stalled: dict[str, str] = {}
        self._to_pause: list[str] = []  # paused by the loop, not stored as paused yet

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = self.loop
        with loop.cond:
            if self.running:
                return
            self.running = True
            loop.stopping = False
        self.store.open()
        self.sync.start_watch()
        try:
            self.sync.load()
        except Exception as exc:  # e.g. the database is locked: the loop retries
            self.faults.set("store", f"loading jobs failed: {exc}")
        for executor in list(self._executors.values()):
            self._start_executor(executor)
        _capture.install()
        self.writer.start()
        loop.start()
        self.listeners.emit(SchedulerStarted(timestamp=self.clock.time()))

    def shutdown(self, wait: bool, timeout: float) -> None:
        """See ``Scheduler.shutdown``; real time bounds it, whatever the clock says."""
        loop = self.loop
        with loop.cond:
            if not self.running or loop.stopping:
                return
        deadline = time.monotonic() + timeout
        loop.stop(timeout)
        for executor in list(self._executors.values()):
            executor.shutdown(wait=wait, timeout=max(0.0, deadline - time.monotonic()))
        with loop.cond:
            leftovers = list(loop.inflight)
        for run_id in leftovers:  # an executor that broke its contract: still record it
            loop.runs.record_cancelled(run_id)
        self.writer.stop(max(0.1, deadline - time.monotonic()))
        if self.store.is_shared:
            # fires this scheduler claimed and will not run (handed over early, cancelled
            # now): the other schedulers take them now rather than after the lease
            try:
                self.store.forget(loop.scheduler_id)
            except Exception as exc:  # the store is down: the lease runs out instead
                log.warning("nbsched could not release its claims on the store: %s", exc)
        self.sync.stop_watch()
        _capture.uninstall()
        with loop.cond:
            self.running = False
        self.listeners.emit(SchedulerStopped(timestamp=self.clock.time()))

    @property
    def accepting(self) -> bool:
        return self.running and not self.loop.stopping

    def _before_pass(self) -> None:
        """(loop thread, each pass) Load the jobs, look at the store when due, store the
        pauses the loop decided."""
        sync, faults = self.sync, self.faults
        if not sync.loaded:
            sync.load()
            faults.clear("store")
        if sync.due():
            # A store that cannot be read (down, locked) must not stop jobs from firing:
            # dispatching never needs it. Report the fault and look again next interval.
            try:
                sync.check()
            except Exception as exc:
                faults.set("store", f"reading the store failed: {exc}")
            else:
                faults.clear("store")
        if self._to_pause:
            self._store_pauses()

    def _next_look(self) -> float | None:
        return self.sync.next_look()

    def _working(self) -> bool:
        """Runs in flight, or run records not written yet (the beats of a shared store)."""
        return bool(self.loop.inflight) or self.writer.pending > 0

    def _cover(self) -> None:
        self.sync.cover()

    def _wake(self) -> None:
        self.sync.wake()

    def _busy(self) -> bool:
        """Runs are waiting for a worker, or fires to be claimed or dispatched (the writer
        lets them go first)."""
        loop = self.loop
        return loop.claiming or loop.more_due or any(
            executor.backlog() for executor in list(self._executors.values())
        )

    def _take_next_run_times(self) -> dict[str, float | None]:
        return self.loop.take_next_run_times()

    # ------------------------------------------------------------------ executors

    def executor(self, name: str) -> Executor:
        """The executor called ``name``, created on first use if the factory knows it."""
        executor = self._executors.get(name)
        if executor is not None:
            return executor
        made = self._make_executor(name, self.max_workers)
        if made is None:
            known = sorted({*self._executors, "process", "notebook"})
            raise InvalidArgumentError(
                f"Unknown executor {name!r}{did_you_mean(name, known)}; choose one of {known}"
            )
        self._executors[name] = made
        if self.running:
            self._start_executor(made)
        return made

    def _start_executor(self, executor: Executor) -> None:
        executor.emit = self.listeners.emit  # (progress events of notebook runs)
        executor.start(self.clock, self.loop.runs.on_started, self.loop.runs.on_finished)

    def _executor_of(self, job: Job) -> Executor:
        """The executor of a stored job (the thread pool if its own is unknown here)."""
        try:
            return self.executor(job.executor)
        except InvalidArgumentError:
            return self._executors["thread"]

    # ------------------------------------------------------------------ jobs

    def entry(self, name: str) -> Entry:
        """(lock held) The entry of ``name``; :class:`JobLookupError` if there is none."""
        entry = self.loop.entries.get(name)
        if entry is None:
            raise JobLookupError(name, self.loop.entries)
        return entry

    def public(self, entry: Entry) -> Job:
        """The job as callers see it: with its next fire time, zone and unbound flag."""
        job = entry.job
        options = job.options
        unbound = entry.func is None and options.kind != "notebook"
        if options.unbound != unbound or options.next_tz is not self.tz:
            options = options.replace(unbound=unbound, next_tz=self.tz)
        return Job.build(job.name, job.target, job.trigger, options, entry.next_ts, job.created_ts)

    def job(self, name: str) -> Job:
        with self.loop.cond:
            return self.public(self.entry(name))

    def has(self, name: str) -> bool:
        with self.loop.cond:
            return name in self.loop.entries

    def names(self) -> list[str]:
        with self.loop.cond:
            return list(self.loop.entries)

    def jobs(self, all_owners: bool) -> list[Job]:
        with self.loop.cond:
            mine = {name: self.public(e) for name, e in self.loop.entries.items()}
        if not all_owners:
            return [mine[n] for n in sorted(mine)]
        jobs = {job.name: job for job in self.store.get_jobs(ALL_OWNERS)}
        jobs.update(mine)
        return [jobs[n] for n in sorted(jobs)]

    def add(
        self, job: Job, func: Callable[..., Any] | None, executor: Executor,
        first: float | None, replace_existing: bool,
    ) -> None:
        """Store ``job`` and schedule it from ``first`` (checked by the caller)."""
        with self.sync.job_write():
            self.store.add_job(job, replace_existing=replace_existing)
        entry = Entry(job, func, executor)
        loop = self.loop
        with loop.cond:
            old = loop.entries.get(job.name)
            loop.entries[job.name] = entry
            loop.unbound.discard(job.name)
            self._stalled.pop(job.name, None)
            if first is not None:
                # The stored row has this next run time already. (A job this one replaced
                # may have left another one for the writer: that one is overwritten.)
                loop.schedule(entry, first, write=old is not None)
        event = JobUpdated if old is not None else JobAdded
        listeners = self.listeners
        if listeners.callbacks(event):  # (none: no event to build, on every add of a burst)
            listeners.emit(event(timestamp=self.clock.time(), job_name=job.name, job=job))

    def pause(self, name: str) -> Job:
        loop = self.loop
        with loop.cond:
            entry = self.entry(name)
            job = replace(entry.job, paused=True)
        with self.sync.job_write():
            self.store.update_job(replace(job, next_run_time=None))
        with loop.cond:
            entry.job = job
            entry.next_ts = None
            loop.nrt_dirty.pop(name, None)
        self.listeners.emit(JobPaused(timestamp=self.clock.time(), job_name=name))
        return self.job(name)

    def resume(self, name: str) -> Job:
        loop = self.loop
        now = self.clock.time()
        with loop.cond:
            entry = self.entry(name)
            job = replace(entry.job, paused=False)
            nxt = job.trigger.next_fire_ts(now)
        nrt = None if nxt is None else datetime.fromtimestamp(nxt, self.tz)
        with self.sync.job_write():
            self.store.update_job(replace(job, next_run_time=nrt))
        with loop.cond:
            entry.job = job
            self._stalled.pop(name, None)
            loop.schedule(entry, nxt)
        self.listeners.emit(JobResumed(timestamp=now, job_name=name))
        return self.job(name)

    def remove(self, name: str) -> None:
        loop = self.loop
        with loop.cond:
            self.entry(name)
        # Records still queued go to the store first, so that the job's history goes with it:
        # written after the removal they would outlive it, and reappear under a new job of
        # the same name. (Runs still in flight finish and are recorded, as documented.)
        self.writer.flush(timeout=1.0)
        with self.sync.job_write():
            self.store.remove_job(name)
        with loop.cond:
            loop.entries.pop(name, None)
            loop.unbound.discard(name)
            loop.abandoning.discard(name)
            loop.nrt_dirty.pop(name, None)
            self._stalled.pop(name, None)
        self.listeners.emit(JobRemoved(timestamp=self.clock.time(), job_name=name))

    def upcoming(self, limit: int) -> list[tuple[datetime, Job]]:
        with self.loop.cond:
            pending = [(e.next_ts, e) for e in self.loop.entries.values() if e.next_ts is not None]
            soon = heapq.nsmallest(limit, pending, key=lambda p: p[0])
            return [(datetime.fromtimestamp(ts, self.tz), self.public(e)) for ts, e in soon]

    def bind_unbound(self) -> list[str]:
        loop = self.loop
        with loop.cond:
            if not loop.unbound:
                return []
            candidates = [loop.entries[n] for n in loop.unbound if n in loop.entries]
        bound = []
        for entry in candidates:
            func = self.targets.resolve(entry.job)
            if func is None:
                continue
            with loop.cond:
                if loop.entries.get(entry.job.name) is not entry:
                    continue
                entry.func = func
                loop.unbound.discard(entry.job.name)
                if entry.next_ts is not None and not entry.job.paused:
                    loop.push(entry, entry.next_ts)
            bound.append(entry.job.name)
        for name in bound:
            self.listeners.emit(JobBound(timestamp=self.clock.time(), job_name=name))
        return bound

    # ------------------------------------------------------------------ runs

    def run_now(self, name: str, waiter: Waiter | None = None) -> str:
        """Start a run of ``name`` outside its schedule; ``waiter`` (if any) is told when it
        ends."""
        if not self.accepting:
            raise SchedulerNotRunningError(
                "The scheduler is not running; call start() first (or %load_ext nbsched)"
            )
        loop = self.loop
        with loop.cond:
            entry = self.entry(name)
            if entry.func is None and entry.job.kind != "notebook":
                raise TargetLookupError(unbound_reason(entry.job))
            now = self.clock.time()
            return loop.start_run(entry, now, 0, now, waiter)

    def forget_waiter(self, waiter: Waiter) -> None:
        """Nobody waits with ``waiter`` any more (its run goes on and is recorded)."""
        with self.loop.cond:
            waiters = self.loop.waiters
            for run_id in [r for r, w in waiters.items() if w is waiter]:
                del waiters[run_id]

    def output_so_far(self, run_id: str) -> str | None:
        """(any thread, no lock: one dict read) What run ``run_id`` printed so far, if it is
        in flight and its executor can tell."""
        entry = self.loop.inflight.get(run_id)
        if entry is None:
            return None
        try:
            return entry.executor.output_so_far(run_id)
        except Exception:  # a plug-in's bug must not break the views that ask
            log.debug("nbsched: output_so_far(%r) failed", run_id, exc_info=True)
            return None

    def cancel_run(self, name_or_run_id: str) -> Run | None:
        loop = self.loop
        with loop.cond:
            if name_or_run_id in loop.inflight:
                run_id = name_or_run_id
            else:
                self.entry(name_or_run_id)  # JobLookupError for unknown names
                ids = [r for r, e in loop.inflight.items() if e.job.name == name_or_run_id]
                if not ids:
                    return None
                run_id = ids[-1]
            waiter = loop.waiters.setdefault(run_id, Waiter())
        if loop.stop_run(run_id, RunStatus.cancelled):
            waiter.event.wait(5.0)
        return waiter.run

    def _stop_abandoned(self, entry: Entry, now: float, events: list[Event]) -> None:
        """(loop thread, lock held) ``entry`` came due with :data:`MAX_ABANDONED` of its runs
        abandoned and still running: pause it rather than tie up one more thread per fire."""
        job = entry.job
        why = (
            f"Paused: {MAX_ABANDONED} earlier runs of this job were stopped (timeout or "
            f"cancel) but their threads are still running, and Python threads cannot be "
            f"killed. Use executor='process' for jobs that must be killable, then resume it"
        )
        self.loop.record(entry, now, RunStatus.skipped, events, why)
        entry.job = replace(job, paused=True)
        entry.next_ts = None
        self.loop.nrt_dirty.pop(job.name, None)
        self._stalled[job.name] = why
        self._to_pause.append(job.name)
        log.warning("nbsched: job %r: %s", job.name, why)

    def _store_pauses(self) -> None:
        """(loop thread, outside the lock) Store the pauses of :meth:`_stop_abandoned`."""
        with self.loop.cond:
            names, self._to_pause = self._to_pause, []
            jobs = [e.job for n in names if (e := self.loop.entries.get(n)) is not None]
        for job in jobs:
            try:
                with self.sync.job_write():
                    self.store.update_job(replace(job, next_run_time=None))
            except Exception as exc:  # kept paused in memory; the fault says why
                self.faults.set("store", f"storing the pause of {job.name!r} failed: {exc}")
            self.listeners.emit(JobPaused(timestamp=self.clock.time(), job_name=job.name))

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        faults = self.faults.snapshot()
        loop = self.loop
        executors = list(self._executors.items())
        abandoned = sum(e.abandoned() for _, e in executors)
        for name, executor in executors:  # (a Dask cluster that went away, ...)
            fault = executor.fault()
            if fault:
                faults[f"executor {name}"] = fault
        with loop.cond:
            entries = loop.entries
            pending = [e.next_ts for e in entries.values() if e.next_ts is not None]
            running = self.running and not loop.stopping
            if running and not loop.alive:
                faults["loop"] = "the scheduler loop thread is not running"
            return {
                "running": running,
                "healthy": not faults,
                "error": "; ".join(faults.values()) or None,
                "jobs": len(entries),
                "paused": sum(e.job.paused for e in entries.values()),
                "unbound": len(loop.unbound),
                "running_runs": len(loop.inflight),
                "next_run_time": (
                    datetime.fromtimestamp(min(pending), self.tz) if pending else None
                ),
                "pending_writes": self.writer.pending,
                "abandoned_runs": abandoned,
                "listener_errors": self.listeners.failures,
                "stalled": dict(self._stalled),
                "store": self.store.describe(),
                "owner": self.owner,
                "timezone": str(self.tz),
            }

