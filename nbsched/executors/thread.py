"""Run jobs on a bounded pool of daemon threads inside this process.

Why not ``concurrent.futures.ThreadPoolExecutor``: its workers are joined at interpreter exit
(``threading._register_atexit``), so a program with a long job still running cannot exit --
exactly the hang nbsched promises never to cause. These workers are daemon threads, output
is captured per run (``_capture``), and a run over its timeout can be *abandoned*: it is
reported ``timed_out`` at once and its thread is replaced, since Python threads cannot be
killed.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from typing import Any

from .. import _capture
from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError
from ..jobs import Job, RunStatus

__all__ = ["ThreadJobExecutor"]

log = logging.getLogger("nbsched")

_STOP = None  # queue sentinel
_SHUT_DOWN = "the scheduler shut down before it started"


class ThreadJobExecutor(Executor):
    """A bounded pool of daemon threads.

    :param max_workers: most runs in flight at once (abandoned runs do not count)
    :param name: the executor name jobs refer to (``"thread"``; the notebook executor reuses
        this class under another name)
    """

    name = "thread"
    accepts_early = True

    def __init__(self, max_workers: int = 8, *, name: str = "thread") -> None:
        if max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be at least 1, got {max_workers}")
        self.name = name  # type: ignore[misc]
        self.max_workers = max_workers
        self._queue: queue.SimpleQueue[RunRequest | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._capacity = max_workers  # grows by one for every abandoned (still running) run
        self._inflight: dict[str, RunRequest] = {}
        # workers holding a request handed over early wait on this until its fire time
        self._gate = threading.Condition(threading.Lock())
        self._serial = 0
        self._accepting = False
        self._clock: Clock | None = None
        self._on_started: StartCallback = lambda req: None
        self._on_finished: FinishCallback = lambda *a: None

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock = clock
        self._on_started = on_started
        self._on_finished = on_finished
        self._accepting = True

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:
        """Anything callable runs in a thread."""

    def submit(self, request: RunRequest) -> None:
        if not self._accepting:
            self._finish(request, RunStatus.cancelled, "", "the executor is shut down")
            return
        self._queue.put(request)
        # Start another worker only when no idle one will pick this request up.
        if self._idle < self._queue.qsize() and len(self._threads) < self._capacity:
            self._spawn()

    def backlog(self) -> int:
        return self._queue.qsize()

    def _spawn(self) -> None:
        with self._lock:  # (shutdown() snapshots the threads under the same lock)
            if not self._accepting or len(self._threads) >= self._capacity:
                return
            self._serial += 1
            thread = threading.Thread(
                target=self._work, name=f"nbsched-{self.name}-{self._serial}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        clock = self._clock
        assert clock is not None
        inflight = self._inflight
        get_nowait = self._queue.get_nowait
        try:
            while True:
                try:  # with a backlog, no bookkeeping: nobody needs to know we are idle
                    request = get_nowait()
                except queue.Empty:
                    request = self._get_idle()
                if request is _STOP:
                    return
                run_id = request.run_id
                inflight[run_id] = request  # (from here on, cancel() can report it)
                if request.not_before is not None and request.not_before > clock.time():
                    self._wait_until(request.not_before)
                    if not self._accepting and inflight.pop(run_id, None) is not None:
                        self._finish(request, RunStatus.cancelled, "", _SHUT_DOWN)
                        continue
                if run_id not in inflight:  # cancelled, or shut down, while it waited
                    if self._retire_if_over_capacity(me):
                        return
                    continue
                request.started_ts = clock.time()
                reason = self._on_started(request)
                if reason is not None:  # its job was paused or removed since
                    if inflight.pop(run_id, None) is not None:
                        self._on_finished(request, RunStatus.cancelled, "", reason, clock.time())
                    elif self._retire_if_over_capacity(me):  # cancel() reported it first
                        return
                    continue
                _capture.begin()
                error = None
                try:
                    assert request.func is not None
                    request.func(*request.args, **request.kwargs)
                    status = RunStatus.succeeded
                except BaseException:  # a job's SystemExit/KeyboardInterrupt ends the run only
                    status = RunStatus.failed
                    error = traceback.format_exc()
                output = _capture.end()
                # Whoever pops the request first reports it: this thread, or cancel().
                if inflight.pop(run_id, None) is None:
                    if self._retire_if_over_capacity(me):
                        return
                    continue
                self._on_finished(request, status, output, error, clock.time())
        finally:
            with self._lock:
                self._threads.discard(me)

    def _get_idle(self) -> RunRequest | None:
        """Block for the next request, counted as idle meanwhile (see :meth:`submit`)."""
        with self._lock:  # += on an attribute is not atomic across threads
            self._idle += 1
        try:
            return self._queue.get()
        finally:
            with self._lock:
                self._idle -= 1

    def _wait_until(self, ts: float) -> None:
        """Sleep until ``ts`` on the executor's clock, or until shutdown."""
        clock = self._clock
        assert clock is not None
        with self._gate:
            while self._accepting and clock.time() < ts:
                clock.wait(self._gate, ts)

    def _retire_if_over_capacity(self, me: threading.Thread) -> bool:
        """After an abandoned run finally returns, give the extra slot back."""
        with self._lock:
            if self._capacity > self.max_workers:
                self._capacity -= 1
                return True
        return False

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        request = self._inflight.pop(run_id, None)
        if request is None:
            return False
        # The thread cannot be stopped; let the pool start a replacement meanwhile.
        with self._lock:
            self._capacity += 1
        why = "timed out" if status is RunStatus.timed_out else "cancelled"
        self._finish(
            request,
            status,
            "",
            f"Run {why}; its thread could not be stopped and was abandoned "
            "(use executor='process' for jobs that must be killable)",
        )
        return True

    def _finish(self, request: RunRequest, status: RunStatus, output: str, error: str) -> None:
        now = self._clock.time() if self._clock else 0.0
        self._on_finished(request, status, output, error, now)

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            threads = list(self._threads)
        with self._gate:  # workers waiting for a fire time: stop waiting
            self._gate.notify_all()
        # Requests still queued never started: report them cancelled.
        pending: list[RunRequest] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                pending.append(item)
        for request in pending:
            self._finish(request, RunStatus.cancelled, "", _SHUT_DOWN)
        for _ in threads:
            self._queue.put(_STOP)
        if wait and self._clock is not None:
            import time  # real time: threads finish in real time even under a fake clock

            deadline = time.monotonic() + timeout
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        # Whatever still runs is abandoned (daemon threads never block interpreter exit).
        for run_id in list(self._inflight):
            self.cancel(run_id, RunStatus.cancelled)

    def __repr__(self) -> str:
        return (
            f"<ThreadJobExecutor {self.name!r} max_workers={self.max_workers} "
            f"threads={len(self._threads)} running={len(self._inflight)}>"
        )
