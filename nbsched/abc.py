"""The contracts of nbsched's plug-ins: read this file first.

* :class:`Trigger` -- *when*: computes fire times.
* :class:`JobStore` -- *where jobs live*: persists jobs and their run history.
* :class:`Executor` -- *where runs happen*: threads, worker processes, notebook kernels.
* :class:`Clock` -- *what time it is*: the only way time enters the core, so tests can use a
  fake clock instead of sleeping.

The scheduler (``scheduler.py`` and its engine, ``_engine/``) uses every store and executor
through these classes only; the defaults (the memory or SQL store, the thread and process
pools) are the only ones it names, to build them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar

from .jobs import RunStatus

if TYPE_CHECKING:  # (annotations only; jobs.py names Trigger the same way)
    from .events import Event
    from .jobs import Job, Run

__all__ = ["Trigger", "JobStore", "Executor", "Clock", "RunRequest", "ALL_OWNERS"]


class Trigger(ABC):
    """When a job fires.

    Triggers are immutable values: equal triggers compare equal, and
    ``trigger_from_state(t.to_state()) == t``. Fire times are aware datetimes; the scheduler
    uses the float fast path :meth:`next_fire_ts`.
    """

    # no per-instance __dict__/__weakref__ for the slotted built-in triggers (one per job)
    __slots__ = ()

    #: short name used in the persisted state (``"interval"``, ``"cron"``, ``"date"``, ...)
    type_name: ClassVar[str]

    @abstractmethod
    def next_fire_time(self, after: datetime) -> datetime | None:
        """Return the first fire time strictly after ``after`` (an aware datetime), or
        ``None`` when the trigger will never fire again."""

    def next_fire_ts(self, after: float) -> float | None:
        """Same as :meth:`next_fire_time` on POSIX timestamps. Override when it can be done
        faster than through datetimes (the scheduler calls it once per fire)."""
        nxt = self.next_fire_time(datetime.fromtimestamp(after, UTC))
        return None if nxt is None else nxt.timestamp()

    def anchor(self, now: datetime) -> Trigger:
        """Return this trigger with everything relative to "now" fixed (an interval's start,
        the time of ``"in 10 minutes"``). Called once, when a job is added."""
        return self

    @abstractmethod
    def describe(self) -> str:
        """The schedule in words, e.g. ``"At 09:30, Monday through Friday"``."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """JSON-compatible state: ``{"version": 1, "type": type_name, ...}``."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: Mapping[str, Any]) -> Trigger:
        """Inverse of :meth:`to_state`; raises ``StateVersionError`` for unknown versions."""

    @property
    def timezone(self) -> tzinfo | None:
        """The zone fire times are computed in (``None`` for zone-free triggers)."""
        return None


#: pass as ``owner`` to store queries to mean "every owner"
ALL_OWNERS: Any = object()


class JobStore(ABC):
    """Persists jobs and runs. Every store passes the same contract test suite
    (``tests/stores/test_contract.py``).

    Rules every implementation keeps:

    * reading never deletes or changes anything (a job whose target cannot be imported is
      returned like any other; resolving targets is the scheduler's business);
    * a call that raises changes nothing;
    * methods are thread-safe;
    * run history is pruned to the newest ``retention`` runs per job.
    """

    retention: int = 1000
    #: ``False`` for stores no other process can see (memory): the scheduler then never polls
    #: them for outside changes, and accepts callables that could not be stored by name
    is_shared: ClassVar[bool] = True

    @abstractmethod
    def open(self) -> None:
        """Create tables / connect. Idempotent."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    def describe(self) -> str:
        """Where the jobs are, in a few words, for status displays (``"memory"``, a database
        URL without its password). Optional: the default is the class name."""
        return type(self).__name__

    # -- jobs --------------------------------------------------------------------------------

    @abstractmethod
    def add_job(self, job: Job, *, replace_existing: bool = False) -> None:
        """Insert ``job``. If a job with that name exists: replace it when
        ``replace_existing`` (keeping its ``created_at``), else raise ``ConflictingJobError``."""

    @abstractmethod
    def update_job(self, job: Job) -> None:
        """Replace the stored job of the same name; ``JobLookupError`` if there is none."""

    @abstractmethod
    def remove_job(self, name: str) -> None:
        """Delete the job and its runs; ``JobLookupError`` if there is none."""

    @abstractmethod
    def get_job(self, name: str) -> Job | None:
        """The job named ``name``, or ``None``."""

    @abstractmethod
    def get_jobs(self, owner: Any = ALL_OWNERS) -> list[Job]:
        """Jobs of ``owner`` (``None`` is a valid owner) or of every owner, sorted by name."""

    @abstractmethod
    def set_next_run_times(self, updates: Sequence[tuple[str, float | None]]) -> None:
        """Batch-update ``next_run_time`` (POSIX seconds or ``None``) of several jobs in one
        transaction. Names that no longer exist are ignored."""

    def claim_fires(
        self, claims: Mapping[str, float], owner_id: str, now: float, lease: float
    ) -> dict[str, float | None]:
        """Claim fire times for the scheduler ``owner_id``, atomically, in one transaction:
        what lets several schedulers serve one store with each fire running once.

        For each ``job name: fire ts`` of ``claims``: the claim succeeds if the job is not paused, no
        other scheduler's claim on it is live (``claimed_until > now``), and its stored
        next run time is ``ts`` -- or ``owner_id`` holds the live claim of an earlier fire
        itself (its next-run-time write is still on its way). A success stores the claim
        (holder, ``now + lease``, ``ts``). :meth:`set_next_run_times` releases a claim once
        the next run time moves past its fire. Taking over a claim whose lease ran out also
        ends its holder's ``running`` runs (ids starting with ``holder + "-"``) as
        ``crashed``: that scheduler is gone.

        Returns the losers only: ``{name: the stored next run time}`` (``None``: the job is
        gone, paused or has no more fires; ``ts`` itself: someone else holds that fire).
        Stores no other process sees need no claims (``is_shared`` false): the default
        grants every claim."""
        return {}

    # -- runs --------------------------------------------------------------------------------

    @abstractmethod
    def write_runs(self, runs: Sequence[Run]) -> None:
        """Insert or replace (by ``Run.id``) several runs in one transaction, then prune
        history beyond ``retention`` for the jobs concerned. Runs of unknown jobs are kept."""

    @abstractmethod
    def get_runs(
        self, job_name: str | None = None, *, owner: Any = ALL_OWNERS, limit: int = 50
    ) -> list[Run]:
        """Runs, newest first (by ``scheduled_ts``, then ``started_ts``)."""

    def get_run(self, run_id: str) -> Run | None:
        """The run with id ``run_id``, or ``None``. (This default reads every run; stores
        that can look one up by id override it.)"""
        return next((r for r in self.get_runs(limit=2**62) if r.id == run_id), None)

    @abstractmethod
    def last_runs(
        self, job_names: Sequence[str] | None = None, *, owner: Any = ALL_OWNERS
    ) -> dict[str, Run]:
        """The newest run (in :meth:`get_runs` order) of each stored job named in
        ``job_names`` (and of ``owner``), or of every job of ``owner`` when ``job_names`` is
        ``None``, in one query: what a job list shows next to each job. Names of jobs not
        in the store, and jobs without runs, are left out."""

    @abstractmethod
    def finish_stale_runs(
        self, owner: Any, status: RunStatus, error: str, now: float, spare: Sequence[str] = ()
    ) -> int:
        """Mark every ``running`` run of ``owner`` as ``status`` with ``error`` and
        ``finished_ts=now`` (runs left behind by a process that died), except the runs of the
        schedulers in ``spare`` (ids starting with one of them and ``"-"``: they are alive).
        Returns how many."""

    def beat(self, scheduler_id: str, now: float, lease: float) -> list[str]:
        """Record that scheduler ``scheduler_id`` is alive until ``now + lease`` (it beats
        again before then), forget the schedulers whose time passed -- recording the runs they
        left ``running`` (ids starting with their id and ``"-"``) as ``crashed`` -- and return
        the ids of the other live ones. One transaction. Stores no other process sees need no
        beats (``is_shared`` false): the default records nothing and knows no one else."""
        return []

    def forget(self, scheduler_id: str) -> None:  # noqa: B027
        """Scheduler ``scheduler_id`` stops: release its claims (another scheduler takes
        their fires at once instead of after the lease) and forget its beats. Optional: the
        default, for stores no other process sees, does nothing."""

    # -- change detection -------------------------------------------------------------------

    @abstractmethod
    def change_marker(self) -> object:
        """A cheap value that changes whenever any job is added, changed or removed (by this
        process or another one sharing the store). Next-run-time updates and run records do
        not move it: every scheduler on the store polls it, and firing jobs must not make
        all of them reload."""

    def watch(
        self, callback: Callable[[], None], *, runs: bool = False
    ) -> Callable[[], None] | None:
        """Call ``callback()`` (from a thread of the store's) soon after any process changed a
        job -- what moves :meth:`change_marker` -- and, with ``runs``, also soon after any
        process wrote run records (what :meth:`last_runs` and :meth:`get_runs` read), so
        that readers need not poll while nothing happens. Schedulers watch jobs only: woken
        by the runs of every scheduler on the store, each would pay a wake per fire anywhere;
        a live view of runs asks for ``runs``. Calls may be spurious (a store may report more
        than was asked for, e.g. every write to its file); a write asked for must never go
        unreported. Returns a function that stops watching, or ``None`` when this store
        cannot watch (the default): the caller then polls about once a second."""
        return None


class RunRequest:
    """One run handed to an executor (internal; executors read it, never change it)."""

    __slots__ = (
        "run_id",
        "job_name",
        "func",
        "target",
        "args",
        "kwargs",
        "scheduled_ts",
        "timeout",
        "attempt",
        "owner",
        "started_ts",
        "not_before",
        "parameters",
        "output_path",
    )

    def __init__(
        self,
        run_id: str,
        job_name: str,
        func: Callable[..., Any] | None,
        target: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        scheduled_ts: float,
        timeout: float | None,
        attempt: int,
        owner: str | None,
    ) -> None:
        self.run_id = run_id
        self.job_name = job_name
        #: the resolved callable (``None`` when the executor resolves ``target`` itself)
        self.func = func
        self.target = target
        self.args = args
        self.kwargs = kwargs
        self.scheduled_ts = scheduled_ts
        self.timeout = timeout
        self.attempt = attempt
        self.owner = owner
        #: set by the executor when the body starts
        self.started_ts: float | None = None
        #: handed over ahead of its fire time: do not start before this time (POSIX
        #: seconds); only executors with ``accepts_early`` get such requests
        self.not_before: float | None = None
        #: a notebook job's parameters (``Job.parameters``)
        self.parameters: Mapping[str, Any] | None = None
        #: set by executors that write a file per run (the executed notebook): it becomes
        #: ``Run.output_path``
        self.output_path: str | None = None

    def __repr__(self) -> str:
        return f"<RunRequest {self.job_name!r} run={self.run_id} attempt={self.attempt}>"


#: ``on_finished(request, status, output, error, finished_ts)``; ``request.started_ts`` is
#: set when the body started
FinishCallback = Callable[[RunRequest, RunStatus, str, "str | None", float], None]
#: ``on_started(request)``, called in the worker right before the body runs. For a request
#: handed over early (``not_before``) it may return a reason not to run it after all (its job
#: was paused or removed meanwhile): the executor then reports it ``cancelled`` with that reason
StartCallback = Callable[[RunRequest], "str | None"]


class Executor(ABC):
    """Runs :class:`RunRequest` s somewhere and reports how each ended.

    Contract:

    * :meth:`submit` never blocks and never raises for a failing job;
    * ``on_finished`` is called **exactly once** per submitted request, from any thread;
    * after :meth:`cancel` returns ``True`` the executor has already reported the run with
      the given status, and a late result of that run is dropped;
    * :meth:`shutdown` never hangs: whatever is still running after ``timeout`` is abandoned
      (threads) or killed (processes) and reported ``cancelled``;
    * :meth:`output_so_far` (optional) is cheap and safe from any thread, and never changes
      what the run's final ``output`` will be.
    """

    #: the name jobs use to choose this executor (``Job.executor``)
    name: ClassVar[str]
    #: takes requests ahead of their fire time (``RunRequest.not_before``) and starts them on
    #: time itself, so that the scheduler's dispatch work for a burst is done before it
    accepts_early: ClassVar[bool] = False
    #: how long before its fire time this executor wants a run (seconds; with
    #: ``accepts_early``): a notebook run starts its kernel then, so its first cell starts on
    #: time. 0: the scheduler's own short lead
    lead: float = 0.0
    #: set by the scheduler before :meth:`start`: hands an event (e.g. ``RunProgress``) to the
    #: scheduler's listeners, from any thread
    emit: Callable[[Event], None] | None = None

    @abstractmethod
    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        """Get ready to run requests; called by ``Scheduler.start()``."""

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:  # noqa: B027
        """Check at add time that ``job`` can run here (e.g. that it pickles); raise an
        ``NbschedError`` subclass if not. Optional: the default accepts everything."""

    @abstractmethod
    def submit(self, request: RunRequest) -> None:
        """Start running ``request`` as soon as a worker is free."""

    def abandoned(self, job_name: str | None = None) -> int:
        """How many runs (of ``job_name``, or of every job) this executor reported finished
        -- timed out or cancelled -- while their bodies still run, because it cannot stop
        them (threads). The scheduler stops firing a job that has several. Optional: the
        default, for executors that kill what they stop, says none."""
        return 0

    def fault(self) -> str | None:
        """Why this executor cannot run jobs right now (a cluster it reaches that went
        away), shown in ``Scheduler.status()`` like a store fault; ``None`` when it can.
        Optional: the default has none."""
        return None

    def backlog(self) -> int:
        """How many submitted runs wait for a worker (the run writer holds its batches back
        while there are any). Optional: the default says none."""
        return 0

    def output_so_far(self, run_id: str) -> str | None:
        """What run ``run_id`` has printed so far while it runs (bounded like its final
        output: the end of it), for live views; ``None`` when the run is not running here
        (queued, finished, unknown) or this executor cannot tell. Called from any thread,
        about once a second per watched run. Optional: the default cannot tell (the dask
        executor, whose runs print on another machine, keeps it)."""
        return None

    @abstractmethod
    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        """Stop a run in flight and report it with ``status``. ``False`` if not running."""

    @abstractmethod
    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        """Stop accepting work and release workers (see the class contract)."""


class Clock(ABC):
    """Source of time for the core. ``_clock.SystemClock`` is the real one;
    ``nbsched.testing.FakeClock`` is driven by tests."""

    @abstractmethod
    def time(self) -> float:
        """Current POSIX time in seconds."""

    def now(self) -> datetime:
        """Current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    @abstractmethod
    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Block on ``cond`` (held by the caller) until it is notified or the clock reaches
        ``deadline`` (POSIX seconds; ``None`` waits for a notification only). May return
        early; callers re-check their state."""
