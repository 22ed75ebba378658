"""Runs in flight: what executors report back about them, and who waits for which.

Executors call :meth:`InFlight.on_started` and :meth:`InFlight.on_finished` from their own
threads, thousands of times a second in a burst. A finished run is recorded (the run
writer), its waiter and listeners told, and it is queued for the loop to settle (in-flight
counts, retries) on its next pass: finishing a run never waits for the loop's lock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from ..abc import Clock, RunRequest
from ..events import RunFinished, RunStarted
from ..jobs import Run, RunStatus
from .entry import Entry, Waiter
from .listeners import Listeners
from .writer import RunWriter

__all__ = ["RETRYABLE", "InFlight"]

log = logging.getLogger("nbsched")

#: run outcomes that a job's ``retries`` apply to
RETRYABLE = frozenset({RunStatus.failed, RunStatus.timed_out, RunStatus.crashed})


class InFlight:
    """The runs handed to executors and not settled yet.

    :param cond: the loop's condition (a run to retry wakes the loop)
    :param entries: the loop's entries by job name (read without the lock)
    """

    def __init__(
        self,
        clock: Clock,
        writer: RunWriter,
        listeners: Listeners,
        cond: threading.Condition,
        entries: dict[str, Entry],
    ) -> None:
        self._clock = clock
        self._writer = writer
        self._callbacks = listeners.callbacks  # (bound once: called for every run)
        self._call = listeners.call
        self._cond = cond
        self._entries = entries
        #: run id -> its job's entry, from dispatch until the executor reports it
        self.inflight: dict[str, Entry] = {}
        self.waiters: dict[str, Waiter] = {}
        # Runs that finished, for the loop to settle (in-flight counts, retries): workers only
        # append here, so finishing a run never waits for the loop's lock. The items are
        # (run_id, status value, attempt, scheduled_ts, finished_ts): strings and numbers
        # only, which the garbage collector stops tracking. They may wait for the loop's next
        # pass for a while; tracked objects would pile up in its oldest generation and bring
        # on full collections, which stall every thread for milliseconds in a busy second.
        self.done: deque[tuple[str, str, int, float, float]] = deque()
        self.finishing: dict[str, Entry] = {}  # run_id -> entry, until settled

    def on_started(self, request: RunRequest) -> str | None:
        """The executors' ``StartCallback`` (``nbsched.abc``): a body is about to start."""
        if request.not_before is not None:
            # Handed over early: its job may have been paused or removed since (lock-free
            # reads; the API methods change these under the lock before they return).
            entry = self.inflight.get(request.run_id)
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

    def on_finished(
        self, request: RunRequest, status: RunStatus, output: str, error: str | None,
        finished_ts: float,
    ) -> None:
        """The executors' ``FinishCallback`` (``nbsched.abc``): a run ended, once per run."""
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
            output_path=request.output_path,
        )
        self._writer.finished(run)
        # No lock here: dict.pop and deque.append are atomic, and the loop thread settles the
        # bookkeeping before its next dispatch. With thousands of runs a second, workers that
        # queued for the loop's lock after every run were the bottleneck.
        run_id = request.run_id
        entry = self.inflight.pop(run_id, None)
        waiter = self.waiters.pop(run_id, None)
        if entry is not None:
            self.finishing[run_id] = entry
            self.done.append(  # (_value_: the plain str; .value is a slow property)
                (run_id, status._value_, request.attempt, request.scheduled_ts, finished_ts)
            )
            if status in RETRYABLE and request.attempt < entry.job.retries:
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

    def record_cancelled(self, run_id: str) -> None:
        """Record a run an executor never reported (it broke its contract) at shutdown."""
        with self._cond:
            entry = self.inflight.get(run_id)
        if entry is None:
            return
        now = self._clock.time()
        request = RunRequest(
            run_id, entry.job.name, None, entry.job.target, (), {}, now, None, 0, entry.job.owner,
        )
        self.on_finished(request, RunStatus.cancelled, "", "the scheduler shut down", now)
