"""The process pool of one ``ProcessJobExecutor.start()`` .. ``shutdown()`` cycle: its
workers, its queue of runs, and how a run moves through them.

**Structure.** Up to ``max_workers`` ``multiprocessing.Process`` objects (forkserver with
``_worker`` preloaded, else spawn; never fork: the kernel has a dozen threads), each with one
duplex ``Pipe`` and one output file. A run is one ``send_bytes`` of its pickled payload to an
idle worker, done directly by the thread that calls ``submit()``, so a warm dispatch costs
about as much as a raw pipe round trip (``benchmarks/bench_procpool.py``); runs that find no
idle worker wait in ``pending`` for the pool thread (``_pool_thread``), which starts workers.

**A worker's states.** *idle* (no run), *busy* (a run was sent to it), *doomed* (killed on
purpose: cancel, timeout, shutdown; its group got SIGTERM, and SIGKILL follows when
``kill_at`` is reached or the worker is dead). A doomed worker never gets another run.

**Reports.** Every run is reported exactly once, through :meth:`Pool.deliver`, and never
with ``lock`` held (``on_finished`` may take the scheduler's locks). A report made inside
``submit()`` is deferred to the pool thread (:meth:`Pool.defer`): the caller of ``submit()``
may hold a lock that ``on_finished`` needs.

**Locking.** ``lock`` guards the worker records and the queues; the executor's API
(``process.py``) takes it to queue, dispatch, cancel and shut down. Only the pool thread
closes a worker's pipe, and it takes the lock first, so a thread holding the lock may write
to an idle worker's pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any

from ..abc import Clock, FinishCallback, RunRequest, StartCallback
from ..jobs import RunStatus
from . import _worker
from .reaper import Reaper

__all__ = ["Pool", "Worker", "Report", "IDLE", "BUSY", "DOOMED", "kill_group", "one_line"]

_log = logging.getLogger(__name__)

IDLE, BUSY, DOOMED = "idle", "busy", "doomed"
_HAVE_KILLPG = hasattr(os, "killpg")

#: what on_finished gets: (request, status, output, error, finished_ts)
Report = tuple[RunRequest, RunStatus, str, "str | None", float]

_live_pools: weakref.WeakSet[Pool] = weakref.WeakSet()


class Worker:
    """The pool's record of one worker process."""

    __slots__ = ("proc", "pid", "conn", "out_fd", "state", "request", "ready", "kill_at")

    def __init__(self, proc: Any, conn: Any, out_fd: int) -> None:
        self.proc = proc
        self.pid: int = proc.pid
        self.conn: Any = conn
        self.out_fd: int | None = out_fd
        self.state = IDLE
        self.request: RunRequest | None = None
        #: the worker said hello (it is set up and reading)
        self.ready = False
        #: monotonic time at which a doomed worker's group gets SIGKILL
        self.kill_at: float | None = None

    def __repr__(self) -> str:
        return f"<worker pid={self.pid} {self.state}{'' if self.ready else ' starting'}>"

    def signal_tree(self, sig: int) -> None:
        """Signal the worker's whole process group (the worker, the job's children and
        grandchildren). A worker that has not said hello may not have called setpgid yet,
        so it is also signalled by pid, but only while it is known not to have exited (a
        dead worker's pid may already belong to someone else)."""
        if _HAVE_KILLPG:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, sig)
        if not self.ready or not _HAVE_KILLPG:
            with contextlib.suppress(Exception):
                if self.proc.exitcode is None:
                    os.kill(self.pid, sig)

    def output(self, request: RunRequest) -> str:
        """What ``request`` (this worker's run) printed so far. The worker empties its output
        file when it takes a run, before it says :data:`~._worker.STARTED`: until the parent
        has seen that (``started_ts``), the file may still hold the previous run's output,
        so nothing is read (what the run printed before the parent saw it start is lost
        rather than mixed up with another run's)."""
        if self.out_fd is None or request.started_ts is None:
            return ""
        return _worker.read_output(self.out_fd)


class Pool:
    """The workers and queued runs of one start..shutdown cycle (see the module docstring)."""

    def __init__(
        self,
        ctx: Any,
        max_workers: int,
        marker: str,
        clock: Clock,
        on_started: StartCallback,
        on_finished: FinishCallback,
    ) -> None:
        self.ctx = ctx
        self.max_workers = max_workers
        self.marker = marker
        self.clock = clock
        self.on_started = on_started
        self.on_finished = on_finished
        self.lock = threading.Lock()
        self.workers: list[Worker] = []
        self.by_run: dict[str, Worker] = {}
        #: process groups of killed workers, with the time their SIGTERM grace ends
        self.dying_groups: dict[int, float] = {}
        self.pending: deque[tuple[RunRequest, bytes]] = deque()
        self.deferred: list[Report] = []
        #: workers to start ahead of demand, to replace ones that were killed or crashed
        self.replace = 0
        self.closing = False
        #: set when the shutdown of this pool is over (process.py)
        self.shutdown_done = threading.Event()
        self.reaper = Reaper()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        #: the pool thread (``_pool_thread``), once started
        self.thread: threading.Thread | None = None
        _live_pools.add(self)

    # -- used by the executor and the pool thread ------------------------------------------

    def live_pids(self) -> list[int]:
        """Pids of the workers that are not doomed."""
        with self.lock:
            return [w.pid for w in self.workers if w.state != DOOMED]

    def wake(self) -> None:
        """Make the pool thread take a turn (a run was queued, the pool is closing, ...)."""
        if self.wake_w >= 0:
            with contextlib.suppress(OSError):  # full pipe: it is awake anyway
                os.write(self.wake_w, b"!")

    def now(self) -> float:
        """The clock's time, for reports."""
        return self.clock.time()

    def output_of(self, run_id: str) -> str | None:
        """What run ``run_id`` printed so far, ``None`` unless its body runs in a worker.

        Nothing is read before the parent saw the run start (see :meth:`Worker.output`).
        Reading is ``pread`` on a duplicate of the file descriptor: the worker's own offset
        (``O_APPEND``) and the final read are left alone, and the pool thread may close the
        original meanwhile."""
        with self.lock:
            w = self.by_run.get(run_id)
            request = None if w is None else w.request
            if (
                w is None or w.state != BUSY or w.out_fd is None
                or request is None or request.run_id != run_id or request.started_ts is None
            ):
                return None
            try:
                fd = os.dup(w.out_fd)
            except OSError:
                return None
        try:
            return _worker.read_output(fd)
        finally:
            os.close(fd)

    def defer(self, report: Report) -> None:
        """Report from the pool thread rather than from inside submit() (whose caller may
        hold a lock that its on_finished needs)."""
        with self.lock:
            deferred = not self.closing
            if deferred:
                self.deferred.append(report)
        if deferred:
            self.wake()
        else:
            self.deliver(report)

    def report(
        self, request: RunRequest, status: RunStatus, output: str, error: str | None,
        finished: float | None,
    ) -> None:
        """Report ``request`` now; ``finished`` defaults to the clock's time."""
        self.deliver((request, status, output, error, self.now() if finished is None else finished))

    def deliver(self, report: Report) -> None:
        """Call ``on_finished`` (never with the lock held); its errors are logged."""
        try:
            self.on_finished(*report)
        except Exception:
            _log.exception("nbsched: on_finished callback failed for %r", report[0])

    def doom(self, w: Worker, sig: int | None, grace: float | None) -> None:
        """Mark ``w`` for death: signal its group now, SIGKILL it after ``grace`` (lock held)."""
        w.state = DOOMED
        if grace is not None:
            w.kill_at = time.monotonic() + grace
        if sig is not None:
            w.signal_tree(sig)

    def release(self, w: Worker) -> None:
        """Close a dead worker's pipe and output file (lock held)."""
        self.close_conn(w)
        if w.out_fd is not None:
            with contextlib.suppress(OSError):
                os.close(w.out_fd)
            w.out_fd = None
        with contextlib.suppress(Exception):
            if w.proc.exitcode is not None:
                w.proc.close()

    def close_wake_pipe(self) -> None:
        """Close the wake-up pipe (only once the pool thread has stopped)."""
        for fd in (self.wake_r, self.wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.wake_r = self.wake_w = -1

    # -- lock held -------------------------------------------------------------------------

    def idle_worker(self) -> Worker | None:
        """An idle worker, preferring one that is already set up."""
        fallback = None
        for w in self.workers:
            if w.state == IDLE:
                if w.ready:
                    return w
                fallback = fallback or w
        return fallback

    def assign(self, w: Worker, request: RunRequest) -> None:
        """Record that ``request`` runs on ``w`` (before its payload is sent)."""
        w.state = BUSY
        w.request = request
        self.by_run[request.run_id] = w

    def dispatch_pending(self, w: Worker) -> None:
        """Give the oldest queued run to the idle worker ``w`` (pool thread)."""
        if not self.pending or self.closing:
            return
        request, payload = self.pending.popleft()
        self.assign(w, request)
        try:
            # Pool thread: nobody else closes this pipe. A big payload may block until the
            # worker has read it, which it is doing.
            w.conn.send_bytes(payload)
        except OSError:
            pass  # dead: the pool thread reports the run as crashed

    def close_conn(self, w: Worker) -> None:
        """Close ``w``'s pipe (pool thread, or shutdown once the pool thread stopped)."""
        if w.conn is not None:
            with contextlib.suppress(OSError):
                w.conn.close()
            w.conn = None

    def _after_fork_in_child(self) -> None:
        # A child forked from this process (os.fork, multiprocessing "fork") must not keep
        # the workers' pipes open: an idle worker exits on EOF when we die. No lock: the
        # child has one thread and the lock may be held by a thread that does not exist here.
        self.closing = True
        self.shutdown_done = threading.Event()
        self.shutdown_done.set()  # a shutdown() in the child has nothing to do or wait for
        for w in self.workers:
            self.close_conn(w)
            if w.out_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(w.out_fd)
                w.out_fd = None
        self.close_wake_pipe()


# -- module helpers --------------------------------------------------------------------------


def kill_group(pgid: int, sig: int) -> None:
    """Signal process group ``pgid``, if it still exists (and the platform has groups)."""
    if _HAVE_KILLPG:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)


def one_line(exc: BaseException) -> str:
    """``exc`` in one line of at most 200 characters, for run errors and log lines."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _after_fork_in_child() -> None:
    for pool in list(_live_pools):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
