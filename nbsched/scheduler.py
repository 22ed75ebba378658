"""The public API: :class:`Scheduler`, a thin facade over the engine (``nbsched._engine``).

Each method checks its arguments -- a rejected call changes nothing -- builds the values it
needs and hands the work to the engine, which owns the state and the threads: the loop that
fires jobs, the run writer, the store sync, the listeners. Read ``_engine/engine.py`` next
for how they fit together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from ._clock import SystemClock
from ._engine.engine import Engine
from ._engine.entry import Waiter
from ._engine.loop import DEFAULT_LEAD
from ._engine.resolve import Resolver, unbound_reason
from ._exits import on_exit
from .abc import Clock, Executor, JobStore, Trigger
from .errors import (
    ConflictingJobError,
    InvalidArgumentError,
    NbschedError,
    RunStillRunningError,
    TargetLookupError,
)
from .events import Event
from .executors.thread import ThreadJobExecutor
from .jobs import CellTarget, Job, JobOptions, Run, check_name, default_job_name
from .triggers import parse_trigger
from .triggers.durations import parse_duration
from .triggers.zones import resolve_zone

__all__ = ["LastRuns", "Scheduler"]

#: how long :meth:`Scheduler.run_job` waits for the run by default (seconds)
RUN_WAIT = 300.0
#: longest a waiting caller goes without looking for an interrupt (seconds)
_INTERRUPT_CHECK = 0.1

#: the kwargs of every job that has none (one shared dict instead of one per job; never
#: mutated: jobs are values)
_NO_KWARGS: dict[str, Any] = {}


class LastRuns(dict[str, "Run | None"]):
    """The answer of :meth:`Scheduler.last_runs`: job name -> its newest run (``None`` if it
    has none yet).

    :ivar partial: the store could not be read (locked, down): the runs come from what this
        scheduler has in memory only, and jobs whose newest run is only in the store show
        ``None``
    :ivar problem: why it is partial (``None`` when it is not)
    """

    partial: bool = False
    problem: str | None = None


class Scheduler:
    """Runs jobs on schedule, in the background, and records every run.

    :param db_url: SQLAlchemy URL of the store (``"sqlite:///jobs.db"``); ``None`` (or
        ``"memory://"``) keeps jobs in memory only
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
    :param lead: advanced: how many seconds ahead of its fire time a run is handed to an
        executor that starts it on time itself (the thread pool), so that the work for a
        burst of due jobs is done before it; it grows for large bursts, up to 1 s. ``0``
        hands every run over at its fire time (tests on a fake clock use it to see each
        step)
    :param lease_seconds: several schedulers may serve one shared store: each fire is claimed
        in the store by one of them and runs once; a scheduler that dies holding claims
        loses them after this many seconds, and another one handles those fires
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
        lead: float = DEFAULT_LEAD,
        lease_seconds: float = 30.0,
    ) -> None:
        if store is not None and db_url is not None:
            raise InvalidArgumentError("Pass either db_url or store, not both")
        if max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be at least 1, got {max_workers}")
        if retention < 1:
            raise InvalidArgumentError(f"retention must be at least 1 run, got {retention}")
        if not _number(lead) or not 0 <= lead <= 1:
            raise InvalidArgumentError(f"lead must be seconds between 0 and 1, got {lead!r}")
        if not _number(lease_seconds) or not lease_seconds > 0:
            raise InvalidArgumentError(
                f"lease_seconds must be a positive number of seconds, got {lease_seconds!r}"
            )
        for name, executor in (executors or {}).items():
            if not isinstance(executor, Executor):
                raise InvalidArgumentError(
                    f"executors[{name!r}] must be an nbsched.abc.Executor, got {executor!r}"
                )
        if store is None:
            store = _make_store(db_url, retention)
        elif not isinstance(store, JobStore):
            raise InvalidArgumentError(f"store must be an nbsched.abc.JobStore, got {store!r}")
        self._clock = clock = clock or SystemClock()
        self._tz = resolve_zone(timezone)
        self.owner = owner
        self.max_workers = max_workers
        pool: dict[str, Executor] = {"thread": ThreadJobExecutor(max_workers)}
        pool.update(executors or {})
        self._engine = Engine(
            store, clock, self._tz, owner, pool, _make_executor, max_workers, resolver, lead,
            lease_seconds,
        )
        self._unregister_exit: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background loop. Idempotent.

        Jobs of this owner are loaded from the store; runs a dead process left ``running``
        are recorded ``crashed``. If the store cannot be read right now, the scheduler starts
        anyway, reports the fault in :meth:`status` and keeps trying.
        """
        if self._engine.running:
            return
        self._engine.start()
        if self._unregister_exit is None:
            self._unregister_exit = on_exit(self._shutdown_at_exit)

    def shutdown(self, wait: bool = True, timeout: float = 1.0) -> None:
        """Stop the loop and the executors, record runs still in flight as ``cancelled``
        and write every pending record. Never blocks longer than about ``timeout``.

        :param wait: give running jobs up to ``timeout`` seconds to finish first
        """
        self._engine.shutdown(wait, timeout)
        if self._unregister_exit is not None:
            self._unregister_exit()
            self._unregister_exit = None

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
        return self._engine.running

    @property
    def store(self) -> JobStore:
        """The job store."""
        return self._engine.store

    @property
    def clock(self) -> Clock:
        """The source of time of this scheduler (what "now" is for its schedules)."""
        return self._clock

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
        engine = self._engine
        args = tuple(args)
        kwargs = dict(kwargs) if kwargs else _NO_KWARGS
        timeout, misfire_grace_time, retry_delay = _check_options(
            timeout, max_instances, misfire_grace_time, retries, retry_delay
        )
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidArgumentError(f"parameters must be a mapping, got {parameters!r}")
        kind, ref, func = engine.targets.target(target)
        if kind == "notebook" and executor == "thread":  # the default: implied by .ipynb
            executor = "notebook"
        if name is None:
            name = default_job_name(kind, ref, owner=self.owner)
        check_name(name)  # the one rule for job names (nbsched.jobs)
        executor_obj = engine.executor(executor)
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
            func = engine.targets.resolve(job)
            if func is None:
                raise TargetLookupError(unbound_reason(job))
        executor_obj.validate(job, func)
        exists = engine.has(name)
        if not exists and replace_existing:
            other = engine.store.get_job(name)
            if other is not None and other.owner != self.owner:
                raise ConflictingJobError(
                    name,
                    f"A job named {name!r} belongs to {other.owner or 'another program'!r}; "
                    "choose another name",
                )
        elif exists and not replace_existing:
            raise ConflictingJobError(name)
        engine.add(job, func, executor_obj, None if paused else first, replace_existing)
        return job

    def get_jobs(self, *, all_owners: bool = False) -> list[Job]:
        """This owner's jobs sorted by name (with ``all_owners``, every job in the store)."""
        return self._engine.jobs(all_owners)

    def get_job(self, name: str) -> Job:
        """The job named ``name``.

        :raises JobLookupError: no such job of this owner
        """
        return self._engine.job(name)

    def pause_job(self, name: str) -> Job:
        """Stop firing ``name`` until :meth:`resume_job`; runs in flight continue."""
        return self._engine.pause(name)

    def resume_job(self, name: str) -> Job:
        """Fire ``name`` again, from its next fire time after now."""
        return self._engine.resume(name)

    def remove_job(self, name: str) -> None:
        """Delete ``name`` and its run history. Runs in flight finish and are recorded."""
        self._engine.remove(name)

    def run_job(self, name: str, *, wait: float | None = RUN_WAIT) -> Run:
        """Run ``name`` now, outside its schedule, and return the finished run.

        :param wait: how long to wait for the run to finish (seconds; ``None``: as long as it
            takes). When the time is up the run goes on in the background and is recorded
            as usual; :meth:`get_runs` shows it and :meth:`cancel_run` stops it. An
            interrupt (``KeyboardInterrupt``, the notebook's stop button) stops the waiting
            at once, never the run.
        :raises SchedulerNotRunningError: the scheduler is not started
        :raises TargetLookupError: the job is unbound
        :raises RunStillRunningError: the run had not finished after ``wait`` seconds
        """
        if wait is not None and (not _number(wait) or wait < 0):
            raise InvalidArgumentError(f"wait must be None or seconds ≥ 0, got {wait!r}")
        engine = self._engine
        waiter = Waiter()
        try:
            run_id = engine.run_now(name, waiter)
            finished = _wait_interruptibly(waiter.event, wait)
        except BaseException:
            # An interrupt (it may come while the run is being handed over, too): the run
            # goes on and is recorded; nobody waits for it any more.
            engine.forget_waiter(waiter)
            raise
        if not finished:
            engine.forget_waiter(waiter)
            if waiter.run is None:  # (it may have ended between the two)
                raise RunStillRunningError(name, run_id, wait or 0.0)
        assert waiter.run is not None and waiter.run.id == run_id
        return waiter.run

    def start_run(self, name: str) -> str:
        """Start a run of ``name`` now, outside its schedule, and return its id at once
        (:meth:`run_job` waits for the run; a web request must not).

        :raises SchedulerNotRunningError: the scheduler is not started
        :raises TargetLookupError: the job is unbound
        """
        return self._engine.run_now(name)

    def cancel_run(self, name_or_run_id: str) -> Run | None:
        """Stop a run in flight: the given run id, or the newest run of the given job.
        Returns the cancelled run, ``None`` if nothing of that name/id was running."""
        return self._engine.cancel_run(name_or_run_id)

    def run_output(self, run_id: str) -> str | None:
        """The output run ``run_id`` has printed so far, while it runs (its last megabyte),
        to follow a long run live; :meth:`get_runs` has its whole ``output`` once it ended.

        :returns: ``None`` when the run is not in flight here (not started yet, ended, an
            unknown id, another scheduler's), or its executor cannot tell (dask)
        """
        if not isinstance(run_id, str):
            raise InvalidArgumentError(f"run_id must be a run id (a string), got {run_id!r}")
        return self._engine.output_so_far(run_id)

    def get_runs(self, name: str | None = None, limit: int = 50) -> list[Run]:
        """Runs of one job (or of all this owner's jobs), newest first. Records not written
        yet are included; when the store is locked by another process this does not wait
        for them to be written (at most one attempt, bounded by the store's busy timeout)."""
        if name is not None:
            self._engine.job(name)  # JobLookupError for unknown names
        return self._engine.history.runs(name, limit)

    def last_runs(self, names: Iterable[str] | None = None) -> LastRuns:
        """The newest run of each job, in one store query, without waiting for pending
        records to be written (those are merged in from memory).

        :param names: the jobs to answer for (any owner's, e.g. from
            ``get_jobs(all_owners=True)``); ``None``: every job of this owner
        :returns: a :class:`LastRuns` dict, job name -> newest run or ``None``; its
            ``partial`` flag is set when the store could not be read (locked for longer than
            its busy timeout, or down) and the answer comes from memory only
        """
        engine = self._engine
        if names is None:
            wanted = engine.names()
            newest, problem = engine.history.last(None)
        else:
            if isinstance(names, str):
                raise InvalidArgumentError(
                    f"names must be a list of job names, not one string ({names!r})"
                )
            wanted = list(dict.fromkeys(names))
            if not all(isinstance(n, str) for n in wanted):
                raise InvalidArgumentError(f"names must be job names (strings), got {wanted!r}")
            newest, problem = engine.history.last(wanted)
        answer = LastRuns((n, newest.get(n)) for n in sorted(wanted))
        answer.partial, answer.problem = problem is not None, problem
        return answer

    def upcoming(self, limit: int = 10) -> list[tuple[datetime, Job]]:
        """The next ``limit`` fire times of this owner's jobs, soonest first."""
        return self._engine.upcoming(limit)

    def bind_unbound(self) -> list[str]:
        """Try the resolver again for unbound jobs (after the notebook defined more names).
        Returns the names that are bound now; they fire from their stored schedule, their
        missed fire times handled by their misfire policy."""
        return self._engine.bind_unbound()

    def refresh_from_store(self) -> None:
        """Pick up changes other processes made to this owner's jobs (pause, resume, remove,
        add). The loop does this by itself within about a second."""
        self._engine.sync.check(force=True)

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
        types: tuple[type[Event], ...] | None = None
        if events is not None:
            types = events if isinstance(events, tuple) else (events,)
            if not types or not all(isinstance(t, type) and issubclass(t, Event) for t in types):
                raise InvalidArgumentError(
                    f"events must be event classes from nbsched.events, got {events!r}"
                )
        return self._engine.listeners.add(callback, types)

    def status(self) -> dict[str, Any]:
        """A snapshot: ``running``, ``healthy``, ``error`` (the fault, if any), job and run
        counts, the next fire time, the store and the owner; ``abandoned_runs``: runs stopped
        (timeout, cancel) whose threads still run; ``stalled``: jobs the scheduler paused
        because too many of those piled up, and why."""
        return self._engine.status()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        engine = self._engine
        return (
            f"<Scheduler {state} owner={self.owner!r} jobs={len(engine.names())} "
            f"store={engine.store.describe()}>"
        )

    # ------------------------------------------------------------------ checks

    def _trigger(self, trigger: Trigger | str) -> Trigger:
        if isinstance(trigger, Trigger):
            return trigger
        if isinstance(trigger, str):
            return parse_trigger(trigger, timezone=self._tz)
        raise InvalidArgumentError(
            f"trigger must be a schedule string or a Trigger, got {type(trigger).__name__}"
        )


# ---------------------------------------------------------------------- module helpers


def _make_store(db_url: str | None, retention: int) -> JobStore:
    # (imported when used: a memory-only scheduler never loads SQLAlchemy)
    # "memory:" (what NBSCHED_DB_URL takes for kernels) and "memory://" say the same as None
    if db_url is None or db_url.rstrip("/") == "memory:":
        from .stores.memory import MemoryJobStore

        return MemoryJobStore(retention=retention)
    from .stores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(db_url, retention=retention)


def _make_executor(name: str, max_workers: int) -> Executor | None:
    """The executors created on first use (``None``: no such executor)."""
    if name == "process":
        # (imported when used: most notebooks never start worker processes)
        from .executors.process import ProcessJobExecutor

        return ProcessJobExecutor(max_workers)
    if name == "notebook":  # (nbclient is imported by its first run, not here)
        from .executors.notebook import NotebookJobExecutor

        return NotebookJobExecutor(max_workers)
    return None


def _wait_interruptibly(event: threading.Event, timeout: float | None) -> bool:
    """``event.wait(timeout)`` in short slices (real time). A SIGINT that lands just before
    a long wait blocks is only acted on when the wait returns -- for an unbounded wait,
    never -- so each slice ends within :data:`_INTERRUPT_CHECK` and lets it through."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = _INTERRUPT_CHECK
        if deadline is not None:
            step = min(step, deadline - time.monotonic())
            if step <= 0:
                return event.is_set()
        if event.wait(step):
            return True


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
