"""Run notebook jobs (a whole ``.ipynb``) each in a kernel of its own.

Each run is :func:`nbsched.runner.run_notebook` on a worker thread of this executor: the
executed notebook goes to ``output_dir`` (``Run.output_path``), the text the cells print to
``Run.output``, progress to ``RunProgress`` events. nbclient is imported when the first run
starts, never by the core.

**On time.** A kernel takes a second or two to start. The executor asks for its runs
:attr:`~NotebookJobExecutor.lead` seconds before their fire time (``Executor.lead``): the
kernel starts then, and the first cell waits for the fire time.

**Stopping.** ``cancel`` (and the scheduler's timeouts, which go through it) kills the run's
kernel with everything it started; the run is reported once its notebook has been saved with
the mark of how it ended, or after :data:`CANCEL_WAIT` at the latest.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError
from ..events import RunProgress
from ..jobs import Job, RunStatus
from .capture import tail

__all__ = ["NotebookJobExecutor"]

#: longest ``cancel()`` waits for the run to save its notebook before reporting it (seconds)
CANCEL_WAIT = 2.0
_SHUT_DOWN = "the scheduler shut down before it started"


class _Slot:
    """A run in flight."""

    __slots__ = ("request", "cancel", "output", "verdict", "reported", "done")

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.cancel = threading.Event()
        self.output: list[str] = []
        self.verdict: tuple[RunStatus, str] | None = None  # set by cancel()
        self.reported = False  # (under the executor's lock)
        self.done = threading.Event()


class NotebookJobExecutor(Executor):
    """Runs notebook jobs, each in a fresh kernel (nbclient).

    :param max_workers: most notebook runs (kernels) at once
    :param output_dir: where executed notebooks go, as
        ``<output_dir>/<job>/<job>-<UTC time>.ipynb``; default: ``$NBSCHED_OUTPUT_DIR``, else
        ``<jupyter data dir>/nbsched/runs`` (in a kernel: ``NbschedConfig.output_dir``)
    :param lead: seconds before its fire time a run's kernel is started
    :param kernel_name: kernel for every run instead of each notebook's own kernelspec
    """

    name = "notebook"
    accepts_early = True

    def __init__(
        self,
        max_workers: int = 4,
        *,
        output_dir: str | Path | None = None,
        lead: float = 5.0,
        kernel_name: str | None = None,
    ) -> None:
        if max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be at least 1, got {max_workers}")
        if lead < 0:
            raise InvalidArgumentError(f"lead must be seconds ≥ 0, got {lead!r}")
        self.max_workers = max_workers
        self.output_dir = Path(output_dir).expanduser() if output_dir is not None else None
        self.lead = lead
        self.kernel_name = kernel_name
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._queue: deque[RunRequest] = deque()
        self._running: dict[str, _Slot] = {}
        self._claimed: set[Path] = set()  # output paths of runs in flight
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._serial = 0
        self._accepting = False
        self._clock: Clock | None = None
        self._on_started: StartCallback = lambda request: None
        self._on_finished: FinishCallback = lambda *args: None

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock = clock
        self._on_started = on_started
        self._on_finished = on_finished
        self._accepting = True

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:
        if job.kind != "notebook":
            raise InvalidArgumentError(
                f"The notebook executor runs notebooks (a path ending in .ipynb); job "
                f"{job.name!r} is a {job.kind} job: use executor='thread' or 'process'"
            )
        if job.parameters:
            from ..runner import validate_parameters

            validate_parameters(job.parameters)

    def submit(self, request: RunRequest) -> None:
        with self._lock:
            if not self._accepting:
                late = True
            else:
                late = False
                self._queue.append(request)
                if self._idle:
                    self._has_work.notify()
                elif len(self._threads) < self.max_workers:
                    self._spawn()
        if late:
            self._report(request, RunStatus.cancelled, "", _SHUT_DOWN)

    def backlog(self) -> int:
        # Queued notebook runs wait for a kernel to be free, for minutes: the run writer,
        # which holds its batches back while runs wait (so that a burst of thread runs
        # starts first), would only write every record of the scheduler later.
        return 0

    # ------------------------------------------------------------------ workers

    def _spawn(self) -> None:
        """(lock held) One more worker thread."""
        self._serial += 1
        thread = threading.Thread(
            target=self._work, name=f"nbsched-notebook-{self._serial}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._lock:
                    while self._accepting and not self._queue:
                        self._idle += 1
                        try:
                            self._has_work.wait()
                        finally:
                            self._idle -= 1
                    if not self._accepting:
                        return
                    request = self._queue.popleft()
                    slot = self._running[request.run_id] = _Slot(request)
                try:
                    self._run(slot)
                finally:
                    slot.done.set()
        finally:
            with self._lock:
                self._threads.discard(me)

    def _run(self, slot: _Slot) -> None:
        from ..runner import default_output_dir, default_output_path, run_notebook

        request = slot.request
        clock = self._clock
        assert clock is not None
        when = datetime.fromtimestamp(request.scheduled_ts, UTC)
        folder = self.output_dir or default_output_dir()
        path = self._claim(default_output_path(request.job_name, when, folder))
        request.output_path = str(path)

        def on_start() -> str | None:
            request.started_ts = clock.time()
            return self._on_started(request)

        def on_progress(done: int, total: int) -> None:
            emit = self.emit
            if emit is not None:
                emit(RunProgress(
                    timestamp=clock.time(), job_name=request.job_name,
                    run_id=request.run_id, cells_done=done, cells_total=total,
                ))

        start_at = None
        if request.not_before is not None:  # (the scheduler's clock may be a fake one)
            start_at = time.time() + max(0.0, request.not_before - clock.time())
        status, error = RunStatus.failed, None
        try:
            result = run_notebook(
                request.target,
                parameters=request.parameters,
                output_path=path,
                kernel_name=self.kernel_name,
                timeout=request.timeout,
                on_progress=on_progress,
                on_output=slot.output.append,
                cancel=slot.cancel,
                start_at=start_at,
                on_start=on_start,
            )
            status, error = result.status, result.error
        except Exception as exc:  # a missing notebook, a bad parameter: the run failed
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._claimed.discard(path)
        if not path.exists():  # (it never started: no notebook, a bad file)
            request.output_path = None
        if slot.verdict is not None:
            status, error = slot.verdict
        self._report(request, status, "".join(slot.output), error, slot)

    def _claim(self, path: Path) -> Path:
        """``path``, or ``path`` with ``-2``, ``-3``, ... when a run wrote it already or is
        about to (two runs of a job in the same second: ``run_job`` next to its schedule)."""
        with self._lock:
            candidate, n = path, 1
            while candidate in self._claimed or candidate.exists():
                n += 1
                candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
            self._claimed.add(candidate)
            return candidate

    def _report(
        self, request: RunRequest, status: RunStatus, output: str, error: str | None,
        slot: _Slot | None = None,
    ) -> None:
        with self._lock:
            if slot is not None:
                if slot.reported:
                    return
                slot.reported = True
                self._running.pop(request.run_id, None)
        now = self._clock.time() if self._clock else time.time()
        self._on_finished(request, status, output, error, now)

    # ------------------------------------------------------------------ control

    def output_so_far(self, run_id: str) -> str | None:
        """The text the run's cells printed so far (the runner streams it within a tick of
        the kernel sending it), its last ``capture.LIVE_LIMIT`` characters. Which cell
        it is on goes to listeners as ``RunProgress``."""
        slot = self._running.get(run_id)  # (a dict read; the slot's list only grows)
        if slot is None or slot.reported or slot.request.started_ts is None:
            return None
        return tail("".join(list(slot.output)))  # (list(): a copy, safe against appends)

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        why = "timed out" if status is RunStatus.timed_out else "cancelled"
        with self._lock:
            slot = self._running.get(run_id)
            queued = None
            if slot is None:
                for request in self._queue:
                    if request.run_id == run_id:
                        queued = request
                        self._queue.remove(request)
                        break
            elif slot.reported:
                return False
        if queued is not None:
            self._report(queued, status, "", f"Run {why} before it started")
            return True
        if slot is None:
            return False
        if slot.verdict is None:
            timeout = slot.request.timeout
            slot.verdict = (status, (
                f"Run timed out after {timeout:g} s; its kernel was killed"
                if status is RunStatus.timed_out and timeout is not None
                else f"Run {why}; its kernel was killed"
            ))
        slot.cancel.set()  # the run's watcher kills the kernel within a tick
        slot.done.wait(CANCEL_WAIT)  # (the run saves its notebook, marked, and reports)
        self._report(slot.request, status, "".join(slot.output), slot.verdict[1], slot)
        return True

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            pending = list(self._queue)
            self._queue.clear()
            running = list(self._running.values())
            threads = list(self._threads)
            self._has_work.notify_all()
        for request in pending:
            self._report(request, RunStatus.cancelled, "", _SHUT_DOWN)
        # Kernels are killed, not waited for: a notebook run can take hours, and shutdown
        # must not hang (the scheduler's wait is for short thread jobs).
        for slot in running:
            if slot.verdict is None:
                slot.verdict = (
                    RunStatus.cancelled, "the scheduler shut down; its kernel was killed"
                )
            slot.cancel.set()
        deadline = time.monotonic() + max(timeout, 0.0)
        for slot in running:
            slot.done.wait(max(0.0, deadline - time.monotonic()))
        for slot in running:
            assert slot.verdict is not None
            self._report(slot.request, slot.verdict[0], "".join(slot.output), slot.verdict[1], slot)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __repr__(self) -> str:
        return (
            f"<NotebookJobExecutor max_workers={self.max_workers} "
            f"running={len(self._running)} queued={len(self._queue)}>"
        )

