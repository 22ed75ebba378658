"""The loop: one ``nbsched-loop`` thread that fires jobs on time.

Every job of this scheduler's owner has an :class:`Entry` (the stored :class:`Job`, its
resolved callable, its executor, its next fire time and how many runs are in flight). Fire
times sit in a heap. The loop sleeps on a condition until the earliest fire time (or a run's
timeout, a retry, or the next look at the store) and wakes early when a job changes. When it
wakes it pops every due fire time, computes the job's next one, applies the misfire policy
(grace, coalesce, max_instances), hands :class:`RunRequest` s to the executors and moves on;
nothing on that path touches the database: run records and next-run times go to the store in
batches through the run writer.

``cond`` guards all of this state. API methods take it briefly; the loop holds it while it
dispatches a chunk of due fires, then releases it so that finishing workers are not starved
during a large burst. Executors report runs to :class:`~.runs.InFlight` from their own
threads; the loop settles them on its next pass.

Several schedulers on one store: before it fires them, a pass claims its due fires in the
store in one call, and fires only those it won (``claims.py``). A store nobody else sees
(memory) is not asked.

Faults: anything a pass raises (a store that is down, a trigger that blows up) is logged,
shown by ``Scheduler.status()`` and retried with backoff: the loop never dies with the
scheduler still claiming to run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from functools import lru_cache

from ..abc import Clock, Executor, JobStore, RunRequest
from ..events import Event, RunFinished
from ..jobs import Run, RunStatus
from .claims import FireClaims
from .entry import Entry, Waiter
from .lead import DEFAULT_LEAD, LEAD_MAX, Lead
from .listeners import Faults, Listeners
from .runs import RETRYABLE, InFlight
from .writer import RunWriter

__all__ = ["DEFAULT_LEAD", "MAX_ABANDONED", "Loop"]

log = logging.getLogger("nbsched")

#: most due fires dispatched per pass while holding the lock
_CHUNK = 4096
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0
#: a sleep until a fire time further off than this (seconds) ends LEAD_MAX before it, where
#: the lead is worked out again with the fires that joined meanwhile: so the jobs of a burst
#: of add_job for a later time never wake the loop as they come (see push). At most one pass
#: more per long sleep.
_FAR = 10.0
#: runs of one job abandoned by their executor (timed out or cancelled, body still running in
#: a thread that cannot be stopped) after which the job is paused instead of fired again
MAX_ABANDONED = 3


@lru_cache(maxsize=1024)
def fmt(ts: float, tz: tzinfo) -> str:
    # (cached: the jobs of a burst share their fire times, and a restart over thousands of
    # overdue jobs writes two of them into each job's coalesced record)
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


class Loop:
    """Fire times, dispatch, retries and timeouts of one scheduler.

    :param lead: the base lead (see ``lead.py``); 0 hands every run over at its fire time
    :param before_pass: called by the loop thread before each pass (outside the lock): loads
        the jobs and looks at the store for changes when due
    :param next_look: when the loop must wake for ``before_pass`` (``None``: no need)
    :param on_abandoned: ``(entry, now, events)`` (lock held): a job that has
        :data:`MAX_ABANDONED` runs abandoned and still running came due; it is not fired
    :param claims: the store to claim fires in (``None``: a store no one else shares)
    :param lease: how long a claim holds (seconds) if it is not released
    :param before_claim: called (lock held) before a pass that may claim fires, with claims
        (``StoreSync.wake``: an idle scheduler beats and learns who else is alive)
    """

    def __init__(
        self,
        clock: Clock,
        tz: tzinfo,
        writer: RunWriter,
        listeners: Listeners,
        faults: Faults,
        lead: float,
        before_pass: Callable[[], None],
        next_look: Callable[[], float | None],
        on_abandoned: Callable[[Entry, float, list[Event]], None],
        claims: JobStore | None = None,
        lease: float = 30.0,
        before_claim: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self._before_claim = before_claim
        self._tz = tz
        self._writer = writer
        self._callbacks = listeners.callbacks  # (bound once: called for every run)
        self._emit = listeners.emit
        self._faults = faults
        self._before_pass = before_pass
        self._next_look = next_look
        self._on_abandoned = on_abandoned

        self.cond = threading.Condition()
        self.entries: dict[str, Entry] = {}
        self.unbound: set[str] = set()
        # Fire times: (ts, name). An item is stale, and skipped when popped, unless it is the
        # entry's current next_ts. Kept to two fields: with 10k jobs every byte counts.
        self._heap: list[tuple[float, str]] = []
        # Fire times of jobs whose executor wants them early (Executor.lead), by hand-over
        # time: (ts - lead, ts, name); stale like the heap's items unless ts is next_ts
        self._lead_heap: list[tuple[float, float, str]] = []
        # Retries: (due_ts, seq, name, attempt, scheduled_ts)
        self._retries: list[tuple[float, int, str, int, float]] = []
        self._timeouts: list[tuple[float, str]] = []  # (deadline, run_id)
        # runs past their timeout, stopped by a thread of their own (see _stop_later)
        self._to_stop: deque[str] = deque()
        self._stopping_lock = threading.Lock()
        self._stopper: threading.Thread | None = None
        self.runs = runs = InFlight(clock, writer, listeners, self.cond, self.entries)
        # (the same containers, named here too: dispatch and settling use them all the time)
        self.inflight = runs.inflight
        self.waiters = runs.waiters
        self._done = runs.done
        self._finishing = runs.finishing
        self.nrt_dirty: dict[str, float | None] = {}
        self._seq = itertools.count()
        #: this scheduler's id in the store's claims; its run ids start with it and "-"
        self.scheduler_id = os.urandom(5).hex()
        self._run_prefix = self.scheduler_id + "-"
        self._claims = None if claims is None else FireClaims(claims, self.scheduler_id, lease)
        self._run_serial = itertools.count(1)
        self._wake_at: float | None = None  # deadline the loop sleeps until
        # requests the loop dispatched in this pass, handed to executors only at its end:
        # the requests and, at the same index, their executors (two lists, not a tuple per
        # request: nothing per run for the collector to follow while a wave is handed over)
        self._outbox: list[RunRequest] | None = None
        self._outbox_to: list[Executor] = []
        self._lead = Lead(lead, claims=claims is not None)
        # Fires handed over early only if nothing stands in the way: a job still running at
        # its max_instances, or an executor that cannot wait, is decided at its fire time.
        # Those wait here, out of the heap: (ts, name).
        self.held: list[tuple[float, str]] = []
        self._early_until = 0.0  # the latest fire time handed over early
        #: the last pass stopped at its chunk's end: more fires are due at once (the run
        #: writer waits for them, as for the executors' backlog: with claims, each pass is a
        #: store transaction, and one behind a large batch of run records waits for it)
        self.more_due = False
        #: a pass that claims fires is under way: a store transaction, which a large batch of
        #: run records written meanwhile would hold up (the writer waits for it, as for
        #: :attr:`more_due`; set before the pass, so that a batch that begins during it
        #: waits too)
        self.claiming = False
        #: jobs with a run stopped (timeout, cancel) that its executor may have abandoned
        #: still running: their fires ask it how many are left (:data:`MAX_ABANDONED`). A
        #: set here, not a flag on every job's Entry: rarely anything in it
        self.abandoning: set[str] = set()
        self.stopping = False
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="nbsched-loop", daemon=True)
        self.thread.start()

    def stop(self, timeout: float) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wake_by(self, when: float) -> None:
        """Make sure the loop is awake by ``when`` (clock time)."""
        with self.cond:
            if self._wake_at is None or when < self._wake_at:
                self.cond.notify()

    def _run(self) -> None:
        backoff = _BACKOFF_MIN
        faults = self._faults
        while not self.stopping:
            try:
                self._step()
            except Exception as exc:
                log.exception("nbsched scheduler loop failed; retrying in %.1f s", backoff)
                faults.set("loop", f"{type(exc).__name__}: {exc}")
                with self.cond:
                    if self.stopping:
                        return
                    self.clock.wait(self.cond, self.clock.time() + backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            else:
                if "loop" in faults:
                    faults.clear("loop")
                backoff = _BACKOFF_MIN

    def _step(self) -> None:
        """One pass: housekeeping, then dispatch due fires or sleep."""
        clock = self.clock
        self._before_pass()
        events: list[Event] = []
        outbox: list[RunRequest] = []
        outbox_to: list[Executor] = []
        with self.cond:
            if self.stopping:
                return
            self._settle_finished()
            now = clock.time()
            # Requests are handed over only after the whole pass: a worker woken mid-pass
            # would take the GIL from the loop every 5 ms (sys.getswitchinterval()) and slow
            # the rest of a burst down; bodies then start late, the last ones most.
            self._outbox = outbox
            self._outbox_to = outbox_to
            heap = self._heap
            self.claiming = (
                self._claims is not None and bool(heap) and heap[0][0] <= now + self._lead.value
            )
            try:
                dispatched = self._dispatch_due(now, events)
            except BaseException:
                self.more_due = False  # (a pass that fails leaves the writer nothing to wait for)
                raise
            finally:
                self._outbox = None
                self.claiming = False
            self.more_due = dispatched >= _CHUNK
            expired = self._expired_timeouts(now)
            if dispatched:
                self._lead.dispatched(now, dispatched)
            if not dispatched and not expired and not events:
                self.end_wave(now)
                self._wake_at = self._next_deadline()
                clock.wait(self.cond, self._wake_at)
                self._wake_at = None
        for executor, request in zip(outbox_to, outbox, strict=True):
            executor.submit(request)
        if expired:
            self._stop_later(expired)
        for event in events:
            self._emit(event)

    @property
    def lead(self) -> float:
        """How far ahead of its fire time a run is handed over now (see ``lead.py``)."""
        return self._lead.value

    def end_wave(self, now: float) -> None:
        """A pass dispatched nothing: the dispatch wave, if one was under way, ended."""
        self._lead.end_wave(now)

    def _next_deadline(self) -> float | None:
        times = []
        if self._heap:
            first = self._heap[0][0]
            lead = self._lead.ahead(self._heap)
            wake = first - lead
            if lead and wake - self.clock.time() > _FAR:
                wake = first - LEAD_MAX
            times.append(wake)
        if self.held:
            times.append(min(ts for ts, _ in self.held))
        if self._lead_heap:
            times.append(self._lead_heap[0][0])
        retry = None if self._claims is None else self._claims.next_retry()
        if retry is not None:
            times.append(retry)
        if self._retries:
            times.append(self._retries[0][0])
        if self._timeouts:
            times.append(self._timeouts[0][0])
        look = self._next_look()
        if look is not None:
            times.append(look)
        return min(times) if times else None

    # ------------------------------------------------------------------ dispatch

    def _dispatch_due(self, now: float, events: list[Event]) -> int:
        """Fire what is due, or due within the lead time (at most ``_CHUNK``). Called with
        the lock held."""
        heap = self._heap
        entries = self.entries
        held = self.held
        for item in held:  # decided afresh: they may be due now, or free to go early
            heapq.heappush(heap, item)
        held.clear()
        claims = self._claims
        if claims is not None:
            claims.due(now, entries, heap)
        limit = now + self.lead
        lead_heap = self._lead_heap
        if (
            self._before_claim is not None and claims is not None
            and (heap and heap[0][0] <= limit or lead_heap and lead_heap[0][0] <= now)
        ):
            self._before_claim()  # (a store fault here leaves every fire where it was)
        count = 0
        # with claims, the due fires of this pass are claimed together before any is fired
        # (name: fire time; nothing per fire that the collector would have to follow)
        batch: dict[str, float] | None = None if claims is None else {}
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
            if batch is None:
                count += 1
                self._fire(entry, due, now, events)
            elif claims is not None and claims.leave_to_peer(name, due, now):
                pass  # another live scheduler is the first choice for this fire
            else:
                count += 1
                batch[name] = due  # (a name pushed twice is claimed once)
        if self._lead_heap:
            count += self._dispatch_early(now, limit, events, batch)
        if batch:
            assert claims is not None
            lost = claims.claim(batch, now, entries, heap)
            for name, due in batch.items():
                if name not in lost:
                    self._fire(entries[name], due, now, events)
        retries = self._retries
        while retries and retries[0][0] <= now and count < _CHUNK:
            _, _, name, attempt, scheduled = heapq.heappop(retries)
            entry = entries.get(name)
            if entry is None or entry.job.paused or entry.func is None:
                continue
            count += 1
            if self.abandoning and name in self.abandoning and self._too_many_abandoned(
                entry, now, events
            ):
                continue
            self.start_run(entry, scheduled, attempt, now)
        return count

    def _dispatch_early(
        self,
        now: float,
        limit: float,
        events: list[Event],
        batch: dict[str, float] | None,
    ) -> int:
        """Hand over the runs of executors that want them long before their fire time
        (``Executor.lead``: a notebook kernel starts before it), when nothing stands in the
        way; the others wait in the main heap for the usual time. With claims, they join
        the pass's ``batch`` instead of firing here. Lock held."""
        count = 0
        lead_heap, entries = self._lead_heap, self.entries
        while lead_heap and lead_heap[0][0] <= now:
            _, due, name = heapq.heappop(lead_heap)
            entry = entries.get(name)
            if (
                entry is None or entry.next_ts != due or entry.job.paused or due <= limit
                or (entry.func is None and entry.job.kind != "notebook")
                or entry.running >= entry.job.options.max_instances
                or not entry.executor.accepts_early
            ):
                continue  # stale, or left to the main heap
            count += 1
            if batch is None:
                self._fire(entry, due, now, events)
            else:
                batch[name] = due
        return count

    def set_peers(self, peers: Sequence[str]) -> None:
        """The other schedulers alive on the store (from its beats)."""
        if self._claims is not None:
            self._claims.set_peers(peers)

    def _fire(self, entry: Entry, ts: float, now: float, events: list[Event]) -> None:
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
            self.record(
                entry, skipped_from, RunStatus.missed, events,
                f"Coalesced: the fire times from {fmt(skipped_from, self._tz)} until now were "
                f"missed and folded into the run for {fmt(ts, self._tz)} (coalesce=True)",
            )
        # (without coalesce, a next fire time that is already due fires on the next pass)
        entry.next_ts = nxt
        if nxt is not None:
            self.push(entry, nxt)
        self.nrt_dirty[job.name] = nxt
        late = now - ts
        grace = options.misfire_grace_time
        if grace is not None and late > grace:
            self.record(
                entry, ts, RunStatus.missed, events,
                f"Missed: the scheduler got to it {late:.3f} s after its fire time, more than "
                f"misfire_grace_time={grace}",
            )
        elif entry.running >= options.max_instances:
            self.record(
                entry, ts, RunStatus.skipped, events,
                f"Skipped: {entry.running} run(s) still in flight (max_instances="
                f"{options.max_instances})",
            )
        elif (
            self.abandoning and job.name in self.abandoning
            and self._too_many_abandoned(entry, now, events)
        ):
            pass
        else:
            self.start_run(entry, ts, 0, now)

    def _too_many_abandoned(self, entry: Entry, now: float, events: list[Event]) -> bool:
        """(lock held) Whether ``entry`` has :data:`MAX_ABANDONED` runs abandoned and still
        running; if so the engine stops the job. Each such run holds a thread for good."""
        left = entry.executor.abandoned(entry.job.name)
        if left == 0:
            self.abandoning.discard(entry.job.name)
        if left < MAX_ABANDONED:
            return False
        self._on_abandoned(entry, now, events)
        return True

    def start_run(
        self, entry: Entry, scheduled: float, attempt: int, now: float,
        waiter: Waiter | None = None,
    ) -> str:
        """Hand one run to the executor. Called with the lock held."""
        job = entry.job
        options = job.options
        run_id = f"{self._run_prefix}{next(self._run_serial):x}"
        request = RunRequest(
            run_id, job.name, entry.func, job.target, options.args, options.kwargs,
            scheduled, options.timeout, attempt, options.owner,
        )
        if options.parameters is not None:
            request.parameters = options.parameters
        if scheduled > now:  # handed over early: the executor waits for the fire time
            request.not_before = entry.early_until = scheduled
            if scheduled > self._early_until:
                self._early_until = scheduled
        entry.running += 1
        self.inflight[run_id] = entry
        if waiter is not None:
            self.waiters[run_id] = waiter
        if options.timeout is not None:
            heapq.heappush(self._timeouts, (max(now, scheduled) + options.timeout, run_id))
            if self._outbox is None:
                self.cond.notify()  # the loop may sleep past the deadline
        self._writer.started(request)
        if self._outbox is not None:
            self._outbox.append(request)
            self._outbox_to.append(entry.executor)
        else:
            entry.executor.submit(request)
        return run_id

    def record(
        self, entry: Entry, ts: float, status: RunStatus, events: list[Event], why: str
    ) -> None:
        """Record a run that did not start (missed / skipped)."""
        job = entry.job
        run = Run(
            id=f"{self._run_prefix}{next(self._run_serial):x}",
            job_name=job.name,
            status=status,
            scheduled_ts=ts,
            finished_ts=self.clock.time(),
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
            if run_id in self.inflight:
                expired.append(run_id)
        return expired

    def _stop_later(self, run_ids: list[str]) -> None:
        """Stop runs past their timeout from a thread of their own: an executor may take
        seconds to stop one (a notebook's kernel to kill and its notebook to save, a Dask
        worker to ask), and the loop must not hold up every other fire meanwhile. The
        thread ends once there is nothing left to stop."""
        with self._stopping_lock:
            self._to_stop.extend(run_ids)
            if self._stopper is None:
                self._stopper = threading.Thread(
                    target=self._stop_expired, name="nbsched-timeouts", daemon=True
                )
                self._stopper.start()

    def _stop_expired(self) -> None:
        while True:
            with self._stopping_lock:
                if not self._to_stop:
                    self._stopper = None
                    return
                run_id = self._to_stop.popleft()
            try:
                self.stop_run(run_id, RunStatus.timed_out)
            except Exception:  # an executor's bug: the run stays in flight, shown as such
                log.exception("nbsched: stopping run %s at its timeout failed", run_id)

    def stop_run(self, run_id: str, status: RunStatus) -> bool:
        """Ask the executor to stop a run in flight (timeout, cancel); ``False`` if it had
        already ended."""
        entry = self.inflight.get(run_id)
        if entry is None:
            return False
        self.abandoning.add(entry.job.name)  # (its body may go on in a thread: see above)
        return entry.executor.cancel(run_id, status)

    def schedule(self, entry: Entry, ts: float | None, *, write: bool = True) -> None:
        """Set the next fire time of ``entry`` (lock held) and wake the loop if it is sooner
        than what it sleeps for; the writer stores it, unless ``write`` is false (the store
        has it already)."""
        entry.next_ts = ts
        if ts is not None and (entry.func is not None or entry.job.kind == "notebook"):
            self.push(entry, ts)
        if write:
            self.nrt_dirty[entry.job.name] = ts
            self._writer.poke()

    def push(self, entry: Entry, ts: float) -> None:
        heapq.heappush(self._heap, (ts, entry.job.name))
        lead = entry.executor.lead
        if lead > self.lead:  # (notebook runs: see _dispatch_early)
            heapq.heappush(self._lead_heap, (ts - lead, ts, entry.job.name))
            ts -= lead
        ahead = self._lead
        wake_at = self._wake_at
        if (
            wake_at is None or ts < wake_at
            # (a loop that wakes LEAD_MAX before ts anyway works the lead out then)
            or ts <= ahead.window_end and ahead.pushed() and wake_at > ts - LEAD_MAX
        ):
            self.cond.notify()

    def take_next_run_times(self) -> dict[str, float | None]:
        """The writer's share of next-run times. A job whose run was handed over early keeps
        that run's fire time in the store until it comes: were the process to die just
        before it, the restarted scheduler still finds it due (no fire time is lost)."""
        with self.cond:
            dirty, self.nrt_dirty = self.nrt_dirty, {}
            now = self.clock.time()
            if self._early_until > now:
                entries = self.entries
                later = {
                    name: ts for name, ts in dirty.items()
                    if (e := entries.get(name)) is not None and e.early_until > now
                }
                for name in later:
                    del dirty[name]
                self.nrt_dirty = later
        return dirty

    # ------------------------------------------------------------------ finished runs

    def _settle_finished(self) -> None:
        """Account for finished runs (loop thread, lock held): in-flight counts, retries."""
        done, finishing = self._done, self._finishing
        while done:
            run_id, status, attempt, scheduled_ts, finished_ts = done.popleft()
            entry = finishing.pop(run_id)
            entry.running -= 1
            job = entry.job
            if (
                status in RETRYABLE
                and attempt < job.retries
                and not self.stopping
                and self.entries.get(job.name) is entry
            ):
                heapq.heappush(
                    self._retries,
                    (
                        finished_ts + job.retry_delay, next(self._seq), job.name,
                        attempt + 1, scheduled_ts,
                    ),
                )
