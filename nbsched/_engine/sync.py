"""Keeping up with a store that other processes share: loading this owner's jobs, and looking
for changes made from outside (another kernel paused, removed or added a job).

Changes found are applied to the loop's entries here: jobs added, removed, paused, resumed
or redefined by another process. A look is cheap when nothing changed: the store's change marker (a counter on SQL stores) is
compared with the one seen last. The marker also moves with this scheduler's own job writes,
which are counted (:meth:`StoreSync.job_write`) so that they are not taken for another
process's and do not make it reload every job. Looks happen on the loop thread (within
:data:`WATCH_MIN_GAP` of a write the store reports through ``JobStore.watch``, else every
:data:`WATCH_INTERVAL`) and on the caller's thread (``Scheduler.refresh_from_store``): one
at a time, under :attr:`StoreSync._looking`, since each one moves the counts.

Beats. On a shared store a scheduler writes its row in the store's table of schedulers
(``JobStore.beat``: id, host, pid, ``alive_until``). The row tells the others that it is
alive -- whoever beats next drops the rows whose time passed (and, on the same host, those of
dead pids) and records the runs those schedulers left ``running`` as ``crashed`` -- and whom
to share the work with (``Loop.set_peers``, rendezvous hashing). Claims of fire times do not
depend on it: each claim has a lease of its own (``claimed_until``).

What a row must guarantee is one thing: while this scheduler has a ``running`` run in the
store, its row must run out no later than a lease after it stopped beating, so that a
scheduler killed with runs in flight loses them after ``lease_seconds``. So a scheduler beats
in one of two ways:

* *busy*, ``alive_until = now + lease``, every third of the lease or :data:`PEERS_EVERY`
  if sooner: while it has runs in flight
  or run records not written yet (``working``), or when its last beat found other live
  schedulers (so that they drop it within a lease if it dies, and it sees them come and go);
* *idle*, ``alive_until = now + IDLE_LEASES * lease``, again only a lease before that runs out:
  alone on the store with nothing in flight, it does not wake up to beat, and still shows
  as alive to a scheduler that starts meanwhile.

An idle row never covers a ``running`` record: the decision to write one and the beat happen
under one lock (:attr:`StoreSync._beating`), and the run writer calls :meth:`StoreSync.cover`
before it writes any ``running`` record, which turns an idle row into a busy one first (runs
that start and finish within one write batch are written once, finished, and need no beat).
The loop calls :meth:`StoreSync.wake` before a pass claims fires: an idle scheduler beats
then, so it learns of the schedulers that came since its last beat before it claims, and
their fires go to them.

What an idle row costs when its scheduler dies without ``forget`` (SIGKILL, a lost machine):
no ``running`` run waits on it (see above), and its claims run out after their own lease.
On its host the next beat of any scheduler drops it at once (its pid is dead). From another
host it is taken for alive until it runs out: the schedulers there keep it among their
peers, so the fires it would be the first choice for start :data:`~.claims.DEFER` late, and
they beat every third of the lease meanwhile. Bounded by ``IDLE_LEASES`` leases.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..abc import Clock, Executor, JobStore
from ..events import Event, JobAdded, JobPaused, JobRemoved, JobResumed, JobUpdated
from ..jobs import Job, RunStatus
from ..triggers.registry import BrokenTrigger
from .entry import Entry
from .loop import Loop

__all__ = ["IDLE_LEASES", "PEERS_EVERY", "WATCH_FALLBACK", "WATCH_INTERVAL", "WATCH_MIN_GAP", "StoreSync"]

log = logging.getLogger("nbsched")

#: how often a shared store is checked for changes made by other processes (seconds)
WATCH_INTERVAL = 1.0
#: ... when the store tells us about writes itself (``JobStore.watch``): a look at least this
#: often all the same (a safety net: inotify reports every write), and at most every
#: WATCH_MIN_GAP while writes keep coming
WATCH_FALLBACK = 300.0
WATCH_MIN_GAP = 0.25
#: how long looks in a row may find a change marker that does not match our own writes
#: (while we keep writing jobs) before we reload every job all the same (seconds)
BEHIND_FOR = 10.0
#: a busy scheduler beats at least this often (seconds), and so learns within it of the
#: schedulers that started since: until it knows them it claims every fire as soon as it can,
#: the fires they would be the first choice for too, and the work is not shared
PEERS_EVERY = 2.0
#: an idle scheduler alone on a shared store keeps its row alive this many leases ahead (and
#: beats again a lease before it runs out): 10 minutes with the default 30 s lease
IDLE_LEASES = 20


class StoreSync:
    """Loads and re-reads the jobs of ``owner`` into ``loop``.

    :param resolve: finds the callable of a stored job (``None``: unbound for now)
    :param executor_of: the executor a stored job runs on
    :param emit: publishes the events of changes found
    :param working: whether this scheduler has runs in flight or run records not written yet
        (it then beats every third of the lease; see the module doc)
    """

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        owner: str | None,
        loop: Loop,
        resolve: Callable[[Job], Callable[..., Any] | None],
        executor_of: Callable[[Job], Executor],
        emit: Callable[[Event], None],
        scheduler_id: str = "",
        lease: float = 30.0,
        working: Callable[[], bool] = lambda: False,
    ) -> None:
        self._store = store
        self._clock = clock
        self._owner = owner
        self._loop = loop
        self._resolve = resolve
        self._executor_of = executor_of
        self._emit = emit
        self._looking = threading.RLock()  # one load or look at a time (a listener may look)
        self._count_lock = threading.Lock()  # own_changes (job writes happen on any thread)
        self.loaded = False
        self._marker: object = None
        self.own_changes = 0  # job writes of ours since the marker was last read
        self._own_looked = 0  # own_changes at the last look
        self._behind_since: float | None = None  # since when looks found it did not match
        #: seconds between looks (``None``: the store is not shared, never look)
        self.watch: float | None = WATCH_INTERVAL if store.is_shared else None
        self.next_watch = 0.0
        self._looked_at = 0.0  # the last look (clock time)
        self._unwatch: Callable[[], None] | None = None
        self._id = scheduler_id
        self._lease = lease
        #: seconds between beats (``None``: a store no one else shares)
        self._beat_every: float | None = (
            min(lease / 3, PEERS_EVERY) if store.is_shared else None
        )
        self.next_beat = 0.0
        self._working = working
        # one beat at a time, and the choice between an idle and a busy one made with it:
        # the loop, the run writer (cover) and API threads (load) beat
        self._beating = threading.RLock()
        self.idle_row = False  # the row in the store is an idle one (see the module doc)
        self._peers_seen = False  # the last beat found other live schedulers

    # ------------------------------------------------------------------ watching

    def start_watch(self) -> None:
        """Ask the store to report writes (before the first load: a change made while we
        load is then not missed)."""
        if self._store.is_shared:
            self._unwatch = self._store.watch(self._store_changed)
            self.watch = WATCH_INTERVAL if self._unwatch is None else WATCH_FALLBACK

    def stop_watch(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def next_look(self) -> float | None:
        """When the loop should wake to look or beat (``None``: never)."""
        if self.watch is None:
            return None
        return self.next_watch if self._beat_every is None else min(self.next_watch, self.next_beat)

    def _store_changed(self) -> None:
        """The store saw a write (ours or another process's): look at it soon, within
        :data:`WATCH_MIN_GAP` of the last look."""
        due = self._looked_at + WATCH_MIN_GAP
        if due < self.next_watch:
            self.next_watch = due
            self._loop.wake_by(due)

    # ------------------------------------------------------------------ own writes

    @contextlib.contextmanager
    def job_write(self) -> Iterator[None]:
        """A job write of ours (it moves the store's change marker by one when it commits).
        Counted *before* it commits: a look at the store between the commit and the count
        would take the write for another process's and reload every job (the store's watch
        makes looks come soon after writes). Not counted if it fails."""
        with self._count_lock:
            self.own_changes += 1
        try:
            yield
        except BaseException:
            with self._count_lock:
                self.own_changes -= 1
            raise

    def _own_and_marker(self) -> tuple[int, object]:
        """Our write count and the store's marker, read with no write of ours counted in
        between. A write is counted before it commits, so every write of ours the marker
        shows is in the count; the count may be ahead (writes not committed yet), never
        behind -- which is what lets a look tell our writes from another process's."""
        with self._count_lock:
            return self.own_changes, self._store.change_marker()

    def _seen(self, own: int, marker: object) -> None:
        """The marker read after ``own`` writes of ours were counted now accounts for them."""
        with self._count_lock:
            self.own_changes -= own
        self._marker = marker
        self._own_looked = 0
        self._behind_since = None

    # ------------------------------------------------------------------ loading and looking

    def load(self) -> None:
        """Read this owner's jobs (at start, and again after a failed start). Runs a dead
        process left ``running`` are recorded ``crashed`` first."""
        with self._looking:
            store = self._store
            now = self._clock.time()
            why = "The process running it ended before the run finished"
            alive = self._beat(now)
            if alive:  # (the runs of the other schedulers alive are theirs)
                store.finish_stale_runs(self._owner, RunStatus.crashed, why, now, spare=alive)
            else:
                store.finish_stale_runs(self._owner, RunStatus.crashed, why, now)
            own, marker = self._own_and_marker()  # (jobs added before the first pass)
            self._adopt_all(store.get_jobs(self._owner))
            self._seen(own, marker)
            self.loaded = True

    def _beat(self, now: float, busy: bool = False) -> list[str]:
        """Tell the store we are alive (a shared store), with an idle row unless ``busy``,
        runs are in flight or others were alive at the last beat; the ids of the others
        alive."""
        every = self._beat_every
        if every is None:
            return []
        with self._beating:
            idle = not (busy or self._peers_seen or self._working())
            lease = self._lease * IDLE_LEASES if idle else self._lease
            alive = self._store.beat(self._id, now, lease)
            self.idle_row = idle
            self._peers_seen = bool(alive)
            if idle:  # (one that found others: beat again at once, as a busy one)
                self.next_beat = now if alive else now + lease - self._lease
            else:
                self.next_beat = now + every
        self._loop.set_peers(alive)
        return alive

    def wake(self) -> None:
        """(loop thread, lock held) A pass is about to claim fires: an idle scheduler beats
        first, as a busy one, and so knows the schedulers alive now before it claims."""
        if self.idle_row:  # (read unlocked: a miss costs a first choice, never a run)
            self.cover()

    def cover(self) -> None:
        """(run writer) ``running`` records are about to be written: make an idle row a
        busy one first, so that they are crashed a lease after this scheduler dies."""
        with self._beating:  # (the loop may be writing an idle row right now)
            if self.idle_row:
                self._beat(self._clock.time(), busy=True)

    def due(self) -> bool:
        look = self.next_look()
        return look is not None and self._clock.time() >= look

    def check(self, force: bool = False) -> None:
        """Reconcile with changes other processes made to the store (cheap when none)."""
        with self._looking:
            self._looked_at = now = self._clock.time()
            if self._beat_every is not None and now >= self.next_beat:
                self._beat(now)
            self.next_watch = now + (self.watch or WATCH_INTERVAL)
            own, marker = self._own_and_marker()
            if not force and not self._must_reload(own, marker, now):
                return
            jobs = self._store.get_jobs(self._owner)
            self._seen(own, marker)
            self._reconcile(jobs)

    def _must_reload(self, own: int, marker: object, now: float) -> bool:
        """(``_looking`` held) Whether the marker shows a change that is not ours."""
        if marker == self._marker:
            return False
        if not (isinstance(marker, int) and isinstance(self._marker, int)):
            return True
        changes = marker - self._marker
        recent, self._own_looked = own - self._own_looked, own
        if changes == own:  # every change since the last look was ours
            self._seen(own, marker)
            return False
        if self._behind_since is None:
            self._behind_since = now
        # We wrote jobs since the last look, or the marker does not show all of our writes
        # yet (one is being committed, or a store cached the marker briefly): the counts
        # cannot tell. Look again soon rather than reload for nothing; once our writes
        # pause, they agree or show that another process wrote. Soon, not at the next
        # regular look: on a watched store that is minutes away, and the other process's
        # write that made the counts unclear has already been reported.
        unclear = (recent or changes < own) and now - self._behind_since < BEHIND_FOR
        if unclear:
            self.next_watch = min(self.next_watch, now + WATCH_INTERVAL)
        return not unclear

    # ------------------------------------------------------------------ applying

    def _adopt_all(self, jobs: Sequence[Job]) -> None:
        with self._loop.cond:
            for job in jobs:
                if job.name not in self._loop.entries:
                    self._adopt(job)

    def _adopt(self, job: Job) -> Entry:
        """Create the entry of a job read from the store (lock held)."""
        func = None if job.kind == "notebook" else self._resolve(job)
        entry = Entry(job, func, self._executor_of(job))
        loop = self._loop
        loop.entries[job.name] = entry
        if func is None and job.kind != "notebook":
            loop.unbound.add(job.name)
        if isinstance(job.trigger, BrokenTrigger):
            # Part of the stored job could not be read (see the trigger's reason): keep it
            # listed so it can be fixed or removed, but never fire it with half its state.
            log.warning("nbsched: job %r is not scheduled: %s", job.name, job.trigger.reason)
        elif not job.paused and job.next_ts is not None:
            entry.next_ts = job.next_ts
            if func is not None or job.kind == "notebook":
                loop.push(entry, entry.next_ts)
        return entry

    def _reconcile(self, found: Sequence[Job]) -> None:
        """Make this owner's jobs what the store has (another process changed them)."""
        jobs = {job.name: job for job in found}
        events: list[Event] = []
        now = self._clock.time()
        loop = self._loop
        with loop.cond:
            entries = loop.entries
            for name in [n for n in entries if n not in jobs]:
                entries.pop(name)
                loop.unbound.discard(name)
                loop.abandoning.discard(name)
                events.append(JobRemoved(timestamp=now, job_name=name))
            for name, job in jobs.items():
                entry = entries.get(name)
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
                    loop.schedule(entry, nrt)
                    events.append(
                        JobResumed(timestamp=now, job_name=name)
                        if was_paused
                        else JobUpdated(timestamp=now, job_name=name, job=job)
                    )
        for event in events:
            self._emit(event)


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

