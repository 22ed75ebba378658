"""Write-behind of run records and next-run times, off the scheduler's hot path.

A busy scheduler finishes thousands of runs a second; one transaction per run would make the
store the bottleneck (APScheduler's SQLite store commits once per job: ~650 jobs/s here).
Instead the loop and the workers drop records into a queue, and one ``nbsched-writer`` thread
writes them in batches:

* a run that started and finished within one batch window is written once, as finished;
* a run still in flight is written as ``running`` once it has been in flight for a batch window
  (so a crash leaves a trace that the next start turns into ``crashed``); most runs finish
  sooner and are written once, finished;
* a failed write keeps the batch and retries with backoff, reporting the fault to the
  scheduler -- records are never dropped.

The thread sleeps on an event while there is nothing to write: no polling when idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from ..abc import Clock, JobStore, RunRequest
from ..jobs import Run, RunStatus

__all__ = ["RunWriter"]

log = logging.getLogger("nbsched")

#: how long records may wait before being written (seconds, real time)
BATCH_WINDOW = 0.05
#: write at once when this many records are waiting
BATCH_MAX = 5000
#: while workers still have runs waiting to start, put a batch off by up to this much (s):
#: writing would only take the GIL from them (a burst of 10k runs is over in about 0.1 s)
BURST_DEFER = 1.0
_BACKOFF_MAX = 5.0


def _running_record(req: RunRequest) -> Run:
    return Run(
        id=req.run_id,
        job_name=req.job_name,
        status=RunStatus.running,
        scheduled_ts=req.scheduled_ts,
        started_ts=req.started_ts,
        attempt=req.attempt,
        owner=req.owner,
        output_path=req.output_path,  # (a notebook run's executed notebook, while it runs)
    )


def _before_its_time(req: RunRequest, now: float | None) -> bool:
    """Handed over ahead of its fire time, which has not come: nothing runs yet."""
    return (
        now is not None
        and req.started_ts is None
        and req.not_before is not None
        and req.not_before > now
    )


class RunWriter:
    """Batches run records and next-run-time updates into few store transactions.

    :param store: where to write
    :param take_next_run_times: returns (and forgets) the pending ``{name: ts}`` updates
    :param on_fault: called with an error message when a write fails, ``None`` when a write
        succeeds again
    :param clock: the scheduler's clock (runs handed over before their fire time are not
        written as ``running`` before it)
    :param busy: true while runs wait to be started (the executors' backlog); batches wait
        for it to clear, up to :data:`BURST_DEFER`
    :param before_running: called before a batch with ``running`` records is written (in
        its try: a failure keeps the batch), so that the store knows this scheduler is alive
        for as long as the records need (``StoreSync.cover``)
    """

    def __init__(
        self,
        store: JobStore,
        take_next_run_times: Callable[[], dict[str, float | None]],
        on_fault: Callable[[str | None], None],
        clock: Clock | None = None,
        busy: Callable[[], bool] | None = None,
        before_running: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._before_running = before_running
        self._clock = clock
        self._busy = busy
        self._take_nrt = take_next_run_times
        self._on_fault = on_fault
        self._queue: deque[Run | RunRequest] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._write_lock = threading.Lock()  # one batch at a time (thread + flush())
        self._failed = False
        self._carry: dict[str, float | None] = {}  # next-run times of a failed batch
        self._open: dict[str, RunRequest] = {}  # started, not finished, not yet written
        self._batch: dict[str, Run | RunRequest] = {}  # taken from the queue, being written
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="nbsched-writer", daemon=True)
        self._thread.start()

    def started(self, request: RunRequest) -> None:
        """A run was dispatched (written as ``running`` unless it finishes first)."""
        self._put(request)

    def finished(self, run: Run) -> None:
        """A run ended."""
        self._put(run)

    def poke(self) -> None:
        """Next-run times changed: make sure a batch is written soon."""
        self._wake.set()

    def _put(self, item: Run | RunRequest) -> None:
        queue = self._queue
        was_empty = not queue
        queue.append(item)  # deque.append is atomic
        if (was_empty or len(queue) >= BATCH_MAX) and not self._wake.is_set():
            self._wake.set()  # (Event.set takes a lock: only when it changes something)

    def _run(self) -> None:
        backoff = 0.1
        while True:
            # Runs left open by the last batch get their "running" record one window later.
            self._wake.wait(BATCH_WINDOW if self._open else None)
            if self._stopping:
                return
            # Let a burst accumulate, unless it is already large.
            if len(self._queue) < BATCH_MAX:
                time.sleep(BATCH_WINDOW)
            self._yield_to_burst()
            self._wake.clear()
            ok = self.write_batch()
            if self._stopping:  # stop() may have set the event just before clear()
                return
            if ok:
                backoff = 0.1
            else:
                self._wake.set()  # retry the same records after the backoff
                time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    def _yield_to_burst(self) -> None:
        """Wait (bounded) while runs are waiting to start: their bodies come first."""
        busy = self._busy
        if busy is None or not busy():
            return
        deadline = time.monotonic() + BURST_DEFER
        while busy() and not self._stopping and time.monotonic() < deadline:
            time.sleep(BATCH_WINDOW / 5)

    def write_batch(self, all_open: bool = False) -> bool:
        """Write everything queued now. Runs started in this batch and still in flight wait
        for the next one, unless ``all_open``. Returns False (and keeps the records) on
        failure."""
        with self._write_lock:
            queue = self._queue
            # runs started one batch ago and still open are written now, as running
            carried = self._open
            items: dict[str, Run | RunRequest] = dict(carried)
            self._batch = items  # (seen by pending_runs() while it is being written)
            self._open = {}
            fresh: list[str] = []
            for _ in range(len(queue)):
                item = queue.popleft()
                if isinstance(item, Run):
                    items[item.id] = item  # a finish wins over a start
                elif item.run_id not in items:
                    items[item.run_id] = item
                    fresh.append(item.run_id)
            if not all_open:
                for run_id in fresh:
                    item = items[run_id]
                    if isinstance(item, RunRequest):
                        self._open[run_id] = item
                        del items[run_id]
            self._hold_early(items, [*carried, *fresh] if all_open else carried)
            nrt, self._carry = self._carry, {}
            nrt.update(self._take_nrt())  # newer values win over carried ones
            if not items and not nrt:
                return True
            runs = [i if isinstance(i, Run) else _running_record(i) for i in items.values()]
            try:
                if self._before_running is not None and any(
                    r.status is RunStatus.running for r in runs
                ):
                    self._before_running()
                if runs:
                    self._store.write_runs(runs)
                if nrt:
                    self._store.set_next_run_times(list(nrt.items()))
            except Exception as exc:  # the store is down or locked: keep everything
                for item in reversed(list(items.values())):
                    queue.appendleft(item)  # (a start re-queued after its finish: harmless)
                self._carry = nrt
                self._batch = {}
                if not self._failed:
                    log.warning("nbsched could not write run records (will retry): %s", exc)
                self._failed = True
                self._on_fault(f"writing run records failed: {exc}")
                return False
            self._batch = {}
            if self._failed:
                self._failed = False
                log.info("nbsched: writing run records works again")
                self._on_fault(None)
            return True

    def _hold_early(self, items: dict[str, Run | RunRequest], candidates: Iterable[str]) -> None:
        """Keep runs whose fire time has not come yet open (``RunRequest.not_before``), even
        in a flush: nothing is running yet, and a burst handed over early is then written
        once, finished, not first as ``running``."""
        if self._clock is None:
            return
        now = self._clock.time()
        for run_id in candidates:
            item = items.get(run_id)
            if isinstance(item, RunRequest) and _before_its_time(item, now):
                self._open[run_id] = item
                del items[run_id]

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far (runs in flight as ``running``), now, from the
        calling thread."""
        deadline = time.monotonic() + timeout
        while True:
            if self.write_batch(all_open=True):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def stop(self, timeout: float = 1.0) -> bool:
        """Flush what is queued (bounded by ``timeout``) and stop the thread."""
        ok = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return ok

    def pending_runs(self) -> list[Run]:
        """The records not written yet, as runs (the latest state of each), read from memory
        without waiting for a write in progress. (A record a batch is taking from the queue
        at this very instant can be missing: a reader sees it at its next look.)"""
        items: dict[str, Run | RunRequest] = {}
        # (copies of the containers: taking them is atomic; the writer changes them meanwhile)
        for source in (dict(self._open).values(), list(self._batch.values()), list(self._queue)):
            for item in source:
                if isinstance(item, Run):
                    items[item.id] = item  # a finish wins over a start
                elif item.run_id not in items:
                    items[item.run_id] = item
        now = None if self._clock is None else self._clock.time()
        return [
            i if isinstance(i, Run) else _running_record(i)
            for i in items.values()
            if isinstance(i, Run) or not _before_its_time(i, now)
        ]

    @property
    def pending(self) -> int:
        """Records not written yet (a batch being written counts until it is)."""
        return len(self._queue) + len(self._open) + len(self._batch)
