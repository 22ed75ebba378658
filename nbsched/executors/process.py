"""ProcessJobExecutor: run jobs in worker processes that never outlive the kernel.

The problem this solves: jobs started by an in-process scheduler can keep running for hours
after the program that scheduled them died, and a program can hang forever at exit joining
children that nobody terminated (Airflow #32706). On Linux, the parts below leave no job
process behind however the kernel ends (``tests/process`` ends kernels in every such way).

The parts, one module each:

* this module: the executor's API (``submit``, ``cancel``, ``validate``) and its shutdown;
* ``_pool``: the pool of one start..shutdown cycle: worker records and queued runs;
* ``_pool_thread``: the thread that creates every worker (``PR_SET_PDEATHSIG`` is tied to
  the creating *thread*), reads results, notices deaths, escalates kills and replaces
  workers. ``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker is
  killed, starts workers in whichever thread submits, and adds two thread hops per run;
* ``_mp``: multiprocessing's forkserver and resource tracker, and launching processes with
  SIGINT blocked so that the kernel's group SIGINT cannot kill one while it starts;
* ``_worker``: the worker process. It moves to a process group of its own (the kernel's
  interrupts miss it; one ``killpg`` reaches a job's whole tree), ignores SIGINT, keeps
  SIGTERM at its default, sets ``PR_SET_PDEATHSIG=SIGKILL``, and exits when its pipe reaches
  EOF, i.e. when the kernel is gone. Its fds 1 and 2 are a per-worker unlinked file: all of
  a job's output, C and grandchildren's included, in order, and none in the notebook;
* ``reaper``: a tiny process in its own session that kills every registered worker group
  once its pipe from us reaches EOF -- however we died, SIGKILL included.

**Exit.** :meth:`~ProcessJobExecutor.start` registers :meth:`~ProcessJobExecutor.shutdown`
with ``nbsched._exits.on_exit`` (``threading._register_atexit``, ``atexit``, SIGTERM/SIGHUP,
and ``Kernel.do_shutdown`` once the kernel layer hooks it). Shutdown kills the worker groups
(SIGTERM, up to :data:`SHUTDOWN_GRACE`, SIGKILL), reaps them (a zombie child stalls
ipykernel's shutdown), stops multiprocessing's helpers if nbsched started them, closes the
reaper's pipe, and returns within ``timeout`` (1 s) without ever blocking unboundedly.
Workers are kept out of multiprocessing's ``_children``: its atexit handler never joins them.

**Cancel and timeouts.** :meth:`~ProcessJobExecutor.cancel` (also the scheduler's timeouts,
with ``RunStatus.timed_out``) reports the run at once, with the output printed so far, then
SIGTERMs the worker's group; SIGKILL follows :data:`KILL_GRACE` seconds later at most.

**Guarantees by platform.** Linux: everything above. Other POSIX systems (macOS): no
PDEATHSIG, so a worker whose kernel died is killed by the reaper (and idle ones exit on EOF);
if the reaper is killed together with the kernel, busy workers survive. Windows: no process
groups; cancel kills the worker process only, and nothing kills workers of a kernel that was
killed. Everywhere: a job's descendants that leave the worker's process group (``setsid``,
``setpgid``) escape every killpg; a cgroup would be needed for those.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from multiprocessing import connection as mp_connection
from typing import Any, ClassVar

import cloudpickle

from .. import _exits
from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError, NotPicklableError, SchedulerNotRunningError
from ..jobs import Job, RunStatus
from . import _mp, _pool_thread
from ._pool import Pool, Report, Worker, kill_group, one_line
from .payload import pack

__all__ = ["ProcessJobExecutor"]

#: SIGTERM -> SIGKILL delay for a cancelled or timed-out run (asynchronous: cancel() returns
#: at once; the pool thread sends the SIGKILL)
KILL_GRACE = 0.5
#: SIGTERM -> SIGKILL delay inside shutdown(wait=True), which must finish within 1 s
SHUTDOWN_GRACE = 0.25
#: payloads up to this size are written to an idle worker by the submitting thread itself;
#: bigger ones go through the pool thread so that submit() never blocks on a full pipe
DIRECT_SEND_MAX = 64 * 1024


class ProcessJobExecutor(Executor):
    """Runs jobs in a pool of worker processes tied to this process's lifetime.

    Functions, lambdas and classes defined in notebook cells work: jobs travel with
    cloudpickle. A run that exceeds its timeout, or is cancelled, is killed together with
    everything it started. See the module docstring for how, and what is guaranteed where.

    It can be started again after :meth:`shutdown` (a scheduler that stops and starts).

    :param max_workers: the most worker processes alive at once (started on demand)
    :param start_method: ``"forkserver"`` or ``"spawn"``; ``None`` picks forkserver where
        available. ``"fork"`` is refused: forking a multi-threaded kernel is unsafe
    """

    name: ClassVar[str] = "process"

    def __init__(self, max_workers: int = 4, *, start_method: str | None = None) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be a positive int, not {max_workers!r}")
        methods = mp.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in ("forkserver", "spawn") or start_method not in methods:
            allowed = [m for m in ("forkserver", "spawn") if m in methods]
            raise InvalidArgumentError(
                f"start_method {start_method!r} is not supported here; use one of {allowed} "
                "(fork is never used: it is unsafe in a multi-threaded kernel)"
            )
        self.max_workers = max_workers
        self.start_method = start_method
        self._ctx: Any = mp.get_context(start_method)
        self._marker = str(os.getpid())
        self._lock = threading.Lock()
        #: the pool of the current (or last) start()..shutdown() cycle
        self._pool: Pool | None = None
        self._unregister_exit: Callable[[], None] | None = None

    def __repr__(self) -> str:
        pool = self._pool
        state = "new" if pool is None else "closed" if pool.closing else "running"
        workers = 0 if pool is None else len(pool.workers)
        return (
            f"<ProcessJobExecutor {self.start_method} max_workers={self.max_workers} "
            f"workers={workers} {state}>"
        )

    # -- Executor API ----------------------------------------------------------------------

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        """Start the pool thread (which also starts the forkserver in the background, so the
        first job does not wait for it). Workers and the reaper start on demand. After
        :meth:`shutdown`, starts a fresh pool."""
        with self._lock:
            old = self._pool
            if old is not None and not old.closing:
                return
        if old is not None:  # let a shutdown still running elsewhere finish (it is bounded)
            old.shutdown_done.wait(2.0)
        with self._lock:
            if self._pool is not old:
                return  # another thread restarted it meanwhile
            pool = Pool(self._ctx, self.max_workers, self._marker, clock, on_started, on_finished)
            self._pool = pool
            _mp.acquire(pool)
            _pool_thread.start(pool)
        self._unregister_exit = _exits.on_exit(self._exit_hook)

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:
        """Refuse, at add time, a job whose function or arguments cannot be pickled.

        :raises NotPicklableError: naming the job and the part that failed
        """
        try:
            cloudpickle.dumps((func, job.args, dict(job.kwargs)))
        except Exception as exc:
            what = _unpicklable_part(func, job.args, job.kwargs)
            raise NotPicklableError(
                f"Job {job.name!r} cannot run in a worker process: {what} cannot be pickled "
                f"({one_line(exc)}); use executor='thread'"
            ) from exc

    def submit(self, request: RunRequest) -> None:
        """Hand ``request`` to an idle worker, or queue it. Never blocks, never raises for a
        failing job (a payload that cannot be pickled is reported ``failed``)."""
        pool = self._pool
        if pool is None:
            raise SchedulerNotRunningError("ProcessJobExecutor.submit() called before start()")
        try:
            payload = pack(request)
        except Exception as exc:
            error = f"Cannot send the job to a worker process: {one_line(exc)}"
            pool.defer((request, RunStatus.failed, "", error, pool.now()))
            return
        with pool.lock:
            if pool.closing:
                late = True
            else:
                late = False
                worker = pool.idle_worker() if len(payload) <= DIRECT_SEND_MAX else None
                if worker is not None:
                    pool.assign(worker, request)
                    # Under the lock: only the pool thread closes pipes, and it takes the lock
                    # first. The worker is idle, so its pipe is empty and this does not block.
                    try:
                        worker.conn.send_bytes(payload)
                    except OSError:
                        pass  # it just died; the pool thread reports the run as crashed
                    return
                pool.pending.append((request, payload))
        if late:
            pool.report(request, RunStatus.cancelled, "", "The executor was shut down", None)
            return
        pool.wake()

    def output_so_far(self, run_id: str) -> str | None:
        """Read from the worker's output file: everything the run printed, C-level writes
        and child processes included (its last megabyte)."""
        pool = self._pool
        return None if pool is None else pool.output_of(run_id)

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        """Stop a queued or running run and report it with ``status`` (with the output printed
        so far) before returning. A running run's worker process group gets SIGTERM now and
        SIGKILL at most :data:`KILL_GRACE` seconds later; the worker is replaced."""
        pool = self._pool
        if pool is None:
            return False
        with pool.lock:
            request: RunRequest | None = None
            output, started = "", False
            for i, (pending, _) in enumerate(pool.pending):
                if pending.run_id == run_id:
                    request = pending
                    del pool.pending[i]
                    break
            if request is None:
                worker = pool.by_run.pop(run_id, None)
                if worker is None:
                    return False
                request, started = worker.request, True
                assert request is not None
                worker.request = None
                output = worker.output(request)
                pool.doom(worker, signal.SIGTERM, KILL_GRACE)
                pool.replace += 1
        pool.report(request, status, output, _cancel_message(request, status, started), None)
        pool.wake()
        return True

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        """Kill every worker's process group, reap them, stop multiprocessing's helpers if we
        started them, close the reaper. Runs in flight are reported ``cancelled``.

        Idempotent and bounded: returns within about ``timeout`` seconds, whatever happens.

        :param wait: give jobs :data:`SHUTDOWN_GRACE` seconds between SIGTERM and SIGKILL;
            with ``False`` they get SIGKILL at once
        :param timeout: the time budget for the whole shutdown
        """
        deadline = time.monotonic() + timeout
        pool = self._pool
        if pool is None:
            return
        # Bounded: we may be running in a signal handler that interrupted a thread holding it.
        with _maybe_lock(pool.lock, min(0.2, timeout / 4)):
            first = not pool.closing
            if first:
                pool.closing = True
                reports = _take_all_runs(pool)
                for w in pool.workers:
                    pool.doom(w, signal.SIGTERM if wait else signal.SIGKILL, None)
        if not first:
            pool.shutdown_done.wait(max(0.0, deadline - time.monotonic()))
            return
        try:
            self._shutdown(pool, reports, wait, deadline)
        finally:
            pool.shutdown_done.set()

    # -- introspection (tests, benchmarks, %schedule status) --------------------------------

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes alive now (each is also its process group id)."""
        pool = self._pool
        return [] if pool is None else pool.live_pids()

    @property
    def reaper_pid(self) -> int | None:
        """Pid of the reaper process, ``None`` before the first worker started."""
        pool = self._pool
        return None if pool is None else pool.reaper.pid

    # -- shutdown ------------------------------------------------------------------------------

    def _exit_hook(self) -> None:
        self._unregister_exit = None  # the lifecycle registry already dropped us
        self.shutdown(wait=True, timeout=1.0)

    def _shutdown(self, pool: Pool, reports: list[Report], wait: bool, deadline: float) -> None:
        pool.wake()
        thread = pool.thread
        if thread is not None and thread is not threading.current_thread():
            # It stops after its current step; a worker it was starting meanwhile is killed
            # by the pool thread itself as soon as it sees the pool closing.
            thread.join(max(0.0, min(0.3, deadline - time.monotonic())))
        with _maybe_lock(pool.lock, 0.1):
            workers = list(pool.workers)
        if wait:
            _wait_exited(workers, min(deadline, time.monotonic() + SHUTDOWN_GRACE))
        for w in workers:  # SIGKILL the groups: grandchildren that ignored SIGTERM
            w.signal_tree(signal.SIGKILL)
        with _maybe_lock(pool.lock, 0.1):
            groups, pool.dying_groups = list(pool.dying_groups), {}
        for g in groups:
            kill_group(g, signal.SIGKILL)
            pool.reaper.remove(g)
        for w in workers:  # reap: a zombie child stalls ipykernel's shutdown
            with contextlib.suppress(Exception):
                w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.exitcode is not None:
                pool.reaper.remove(w.pid)
        pool_stopped = thread is None or not thread.is_alive()
        if pool_stopped:
            with _maybe_lock(pool.lock, 0.1):
                for w in workers:
                    pool.release(w)
                pool.workers.clear()
        _mp.release(pool, deadline)
        # At least a moment for the reaper, even late: it exits as soon as it reads EOF (no
        # group is left to kill), and an unreaped one would linger as our zombie.
        pool.reaper.close(max(0.1, deadline - time.monotonic()))
        if pool_stopped:
            pool.close_wake_pipe()
        unregister, self._unregister_exit = self._unregister_exit, None
        if unregister is not None:
            unregister()
        for report in reports:
            pool.deliver(report)


# -- module helpers --------------------------------------------------------------------------


def _take_all_runs(pool: Pool) -> list[Report]:
    """Take every run out of ``pool``, to report it cancelled (its lock held)."""
    now = pool.now()
    reports: list[Report] = [
        (req, RunStatus.cancelled, "", "Cancelled before it started: the executor shut down", now)
        for req, _ in pool.pending
    ]
    pool.pending.clear()
    for w in pool.workers:
        if w.request is not None:
            error = "Cancelled: the executor shut down and killed the worker's process tree"
            reports.append((w.request, RunStatus.cancelled, w.output(w.request), error, now))
            w.request = None
    pool.by_run.clear()
    reports.extend(pool.deferred)
    pool.deferred.clear()
    return reports


def _cancel_message(request: RunRequest, status: RunStatus, started: bool) -> str:
    tail = "its worker's process tree was killed" if started else "it had not started yet"
    if status is RunStatus.timed_out:
        limit = f" of {request.timeout:g} s" if request.timeout else ""
        return f"Timed out: the run exceeded its timeout{limit}; {tail}"
    if status is RunStatus.cancelled:
        return f"Cancelled; {tail}"
    return f"Stopped ({status.value}); {tail}"


def _wait_exited(workers: list[Worker], until: float) -> None:
    """Wait until every worker process has exited, or ``until`` (monotonic)."""
    pending: dict[Any, Worker] = {}
    for w in workers:
        with contextlib.suppress(ValueError):  # closed meanwhile by the pool thread
            pending[w.proc.sentinel] = w
    while pending:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        try:
            ready = mp_connection.wait(list(pending), remaining)
        except (OSError, ValueError):
            return
        for s in ready:
            pending.pop(s, None)


@contextlib.contextmanager
def _maybe_lock(lock: threading.Lock, timeout: float) -> Iterator[bool]:
    """Take ``lock`` if it can be had within ``timeout`` (shutdown may run in a signal
    handler that interrupted the lock's holder); go on without it otherwise."""
    locked = lock.acquire(timeout=timeout)
    try:
        yield locked
    finally:
        if locked:
            lock.release()


def _unpicklable_part(
    func: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> str:
    """Which part of a job does not pickle, in words."""

    def fails(obj: object) -> bool:
        try:
            cloudpickle.dumps(obj)
        except Exception:
            return True
        return False

    if func is not None and fails(func):
        name = getattr(func, "__qualname__", None) or type(func).__name__
        return f"its function {name}"
    for i, arg in enumerate(args):
        if fails(arg):
            return f"argument {i} ({type(arg).__name__})"
    for key, value in kwargs.items():
        if fails(value):
            return f"keyword argument {key!r} ({type(value).__name__})"
    return "its function and arguments"
