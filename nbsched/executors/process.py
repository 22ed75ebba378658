"""ProcessJobExecutor: run jobs in worker processes that never outlive the kernel.

The problem this solves: jobs started by an in-process scheduler keep running for hours after
the program that scheduled them died (``../shared/background/000``), and a program can hang
forever at exit joining children that nobody terminated (Airflow #32706). The mechanisms are
the measured "final2" combination of ``research/kernel-lifecycle.md`` (§3.2, §5): 0 orphans
in 36 of 36 kinds of kernel death.

**Pool structure.** A small pool of our own: up to ``max_workers`` ``multiprocessing.Process``
objects (forkserver with this package's worker module preloaded, else spawn; never fork: the
kernel has a dozen threads), each with one duplex ``Pipe``. Not
``concurrent.futures.ProcessPoolExecutor``, because it gives no per-worker control: killing
one worker (a timeout) breaks the whole pool (``BrokenProcessPool``) instead of replacing that
worker; it starts workers in whatever thread calls ``submit()`` (PDEATHSIG is tied to the
creating *thread*, research §3.2); and its call queue, feeder thread and manager thread add
two thread hops per run. Here a run is one ``send_bytes`` to an idle worker, done directly by
the thread that calls :meth:`~ProcessJobExecutor.submit`, so a warm dispatch costs about as
much as a raw pipe round trip (see ``benchmarks/bench_procpool.py``).

**Threads.** One ``nbsched-procpool`` thread, alive from :meth:`~ProcessJobExecutor.start`
to :meth:`~ProcessJobExecutor.shutdown`, creates every worker (so PDEATHSIG of spawn workers
fires only when the pool really ends) and waits on every worker's pipe and exit sentinel: it
reads results, notices deaths, escalates kills, replaces workers and restarts the reaper.

**Workers** (``nbsched/executors/_worker.py``) call ``setpgid(0, 0)`` (interrupts, which jupyter_client
sends to the kernel's process group, miss them; one ``killpg`` reaches a job's whole tree),
ignore SIGINT, keep SIGTERM at its default, set ``PR_SET_PDEATHSIG=SIGKILL`` and re-check the
parent, and export ``NBSCHED_WORKER=<owner pid>``. An idle worker exits by itself when its
pipe reaches EOF, i.e. when the kernel is gone (``ProcessPoolExecutor``'s idle workers block
forever, research §3.1).

**Reaper** (``nbsched/executors/_reaper.py``): a 15-line process in its own session, reading ``+pgid``
and ``-pgid`` lines on a pipe from us; on EOF (we died, however) it kills every registered
group: TERM, up to 0.5 s, KILL. It is restarted if it dies.

**Exit.** :meth:`~ProcessJobExecutor.start` registers :meth:`shutdown` with
``nbsched._exits.on_exit`` (``threading._register_atexit``, ``atexit``, SIGTERM/SIGHUP,
and ``Kernel.do_shutdown`` once the kernel layer calls ``install_kernel_hooks``). Shutdown
kills the worker groups (TERM, up to 0.25 s, KILL), reaps them, stops multiprocessing's
forkserver and resource tracker if we started them (the tracker ignores SIGTERM and would stall
ipykernel's graceful shutdown until jupyter_client's 2.5 s SIGTERM, research §1), closes the
reaper's pipe, and returns within ``timeout`` (1 s) without ever blocking unboundedly. Workers
are also removed from multiprocessing's ``_children``, so its own atexit handler never joins
them (the Airflow hang).

**Cancel and timeouts.** :meth:`~ProcessJobExecutor.cancel` (``Scheduler.cancel_run``, and
the scheduler's timeouts with ``RunStatus.timed_out``) reports the run at once, with the
output printed so far, then SIGTERMs the worker's group; the pool thread SIGKILLs the group
0.5 s later, or as soon as the worker is dead (so grandchildren that ignore SIGTERM die too),
and starts a replacement worker.

**The main module.** Workers do not import the program's ``__main__`` (multiprocessing's
spawn and forkserver children normally re-run a script's top level as ``__mp_main__``, so a
script without an ``if __name__ == "__main__"`` guard would start a scheduler in every worker).
They do not need it: cloudpickle sends ``__main__`` functions and classes by value. This is
done by filtering ``multiprocessing.spawn.get_preparation_data`` for the pool thread only.

**Output** goes to a per-worker unlinked temporary file that is the worker's fd 1 and 2 (see
``nbsched/executors/_worker.py``): Python and C output and grandchildren's output, in order, nothing in
the notebook's cells. Up to the last 1 MiB of a run is kept.

**Guarantees by platform.** Linux: everything above. Other POSIX systems (macOS): no
PDEATHSIG, so a worker whose kernel died is killed by the reaper (and idle ones exit on EOF);
if the reaper is killed together with the kernel, busy workers survive. Windows: no process
groups; cancel kills the worker process only, and nothing kills workers of a kernel that was
killed. Everywhere: a job's descendants that leave the worker's process group (``setsid``,
``setpgid``) escape every killpg; a cgroup would be needed for those.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import struct
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from multiprocessing import connection as mp_connection
from multiprocessing import process as mp_process
from typing import Any, ClassVar

import cloudpickle

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .. import _exits
from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError, NotPicklableError, SchedulerNotRunningError
from ..jobs import Job, RunStatus
from . import _worker
from ._reaper import Reaper

__all__ = ["ProcessJobExecutor"]

_log = logging.getLogger(__name__)

#: SIGTERM -> SIGKILL delay for a cancelled or timed-out run (asynchronous: cancel() returns
#: at once)
KILL_GRACE = 0.5
#: SIGTERM -> SIGKILL delay inside shutdown(wait=True), which must finish within 1 s
SHUTDOWN_GRACE = 0.25
#: payloads up to this size are written to an idle worker by the submitting thread itself;
#: bigger ones go through the pool thread so that submit() never blocks on a full pipe
DIRECT_SEND_MAX = 64 * 1024

_IDLE, _BUSY, _DOOMED = "idle", "busy", "doomed"
_DOUBLE = struct.Struct("d")
_HAVE_KILLPG = hasattr(os, "killpg")

_env_lock = threading.Lock()
_mp_lock = threading.Lock()
#: multiprocessing helpers nbsched launched ("forkserver", "resource_tracker"), and how many
#: executors are using them: the last one to shut down stops them
_mp_started: set[str] = set()
_mp_users = 0
_live_executors: weakref.WeakSet[ProcessJobExecutor] = weakref.WeakSet()


class _Worker:
    """The pool thread's record of one worker process."""

    __slots__ = ("proc", "pid", "conn", "out_fd", "state", "request", "ready", "kill_at")

    def __init__(self, proc: Any, conn: Any, out_fd: int) -> None:
        self.proc = proc
        self.pid: int = proc.pid
        self.conn: Any = conn
        self.out_fd: int | None = out_fd
        self.state = _IDLE
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


_Report = tuple[RunRequest, RunStatus, str, "str | None", float]


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
        self._clock: Clock | None = None
        self._on_started: StartCallback | None = None
        self._on_finished: FinishCallback | None = None

        self._lock = threading.Lock()
        self._started = False
        #: bumped by every start(): a pool thread of an earlier start stops when it sees it
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._unregister_exit: Callable[[], None] | None = None
        self._reset()

    def _reset(self) -> None:
        """The state of one start()..shutdown() cycle (a scheduler may stop and start again)."""
        self._workers: list[_Worker] = []
        self._by_run: dict[str, _Worker] = {}
        #: process groups of killed workers, with the time their SIGTERM grace ends
        self._dying_groups: dict[int, float] = {}
        self._pending: deque[tuple[RunRequest, bytes]] = deque()
        self._deferred: list[_Report] = []
        #: workers to start ahead of demand, to replace ones that were killed or crashed
        self._replace = 0
        self._closing = False
        self._shutdown_done = threading.Event()
        self._reaper = Reaper()
        self._uses_mp_helpers = False

    def __repr__(self) -> str:
        state = "closed" if self._closing else "running" if self._started else "new"
        return (
            f"<ProcessJobExecutor {self.start_method} max_workers={self.max_workers} "
            f"workers={len(self._workers)} {state}>"
        )

    # -- Executor API ----------------------------------------------------------------------

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        """Start the pool thread (which also starts the forkserver in the background, so the
        first job does not wait for it). Workers and the reaper start on demand. After
        :meth:`shutdown`, starts a fresh pool."""
        with self._lock:
            if self._started and not self._closing:
                return
            restart = self._started or self._closing
        if restart:  # let a shutdown still running elsewhere finish (it is bounded)
            self._shutdown_done.wait(2.0)
        with self._lock:
            if self._started and not self._closing:
                return  # another thread restarted it meanwhile
            if restart:
                self._reset()
            self._generation += 1
            self._clock, self._on_started, self._on_finished = clock, on_started, on_finished
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._started = True
            _live_executors.add(self)
            # The one long-lived thread that creates every worker (research §3.2: PDEATHSIG
            # fires when the creating *thread* exits).
            self._thread = threading.Thread(
                target=self._run_pool, args=(self._generation,), name="nbsched-procpool",
                daemon=True,
            )
            self._thread.start()
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
                f"({_one_line(exc)}); use executor='thread'"
            ) from exc

    def submit(self, request: RunRequest) -> None:
        """Hand ``request`` to an idle worker, or queue it. Never blocks, never raises for a
        failing job (a payload that cannot be pickled is reported ``failed``)."""
        if not self._started:
            raise SchedulerNotRunningError("ProcessJobExecutor.submit() called before start()")
        try:
            target = request.target if request.func is None else None
            payload = cloudpickle.dumps(
                (request.func, target, request.args, dict(request.kwargs)),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        except Exception as exc:
            error = f"Cannot send the job to a worker process: {_one_line(exc)}"
            self._defer((request, RunStatus.failed, "", error, self._now()))
            return
        with self._lock:
            if self._closing:
                late = True
            else:
                late = False
                worker = self._idle_worker() if len(payload) <= DIRECT_SEND_MAX else None
                if worker is not None:
                    self._assign(worker, request)
                    # Under the lock: only the pool thread closes pipes, and it takes the lock
                    # first. The worker is idle, so its pipe is empty and this does not block.
                    try:
                        worker.conn.send_bytes(payload)
                    except OSError:
                        pass  # it just died; the pool thread reports the run as crashed
                    return
                self._pending.append((request, payload))
        if late:
            self._report(request, RunStatus.cancelled, "", "The executor was shut down", None)
            return
        self._wake()

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        """Stop a queued or running run and report it with ``status`` (with the output printed
        so far) before returning. A running run's worker process group gets SIGTERM now and
        SIGKILL at most :data:`KILL_GRACE` seconds later; the worker is replaced."""
        with self._lock:
            request: RunRequest | None = None
            output, started = "", False
            for i, (pending, _) in enumerate(self._pending):
                if pending.run_id == run_id:
                    request = pending
                    del self._pending[i]
                    break
            if request is None:
                worker = self._by_run.pop(run_id, None)
                if worker is None:
                    return False
                request, started = worker.request, True
                assert request is not None
                worker.request = None
                if worker.out_fd is not None:
                    output = _worker.read_output(worker.out_fd)
                self._doom(worker, signal.SIGTERM, KILL_GRACE)
                self._replace += 1
        self._report(request, status, output, _cancel_message(request, status, started), None)
        self._wake()
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
        # Bounded: we may be running in a signal handler that interrupted a thread holding it.
        locked = self._lock.acquire(timeout=min(0.2, timeout / 4))
        try:
            if self._closing:
                first = False
            else:
                first = True
                self._closing = True
                reports = self._take_all_runs()
                workers = list(self._workers)
                for w in workers:
                    self._doom(w, signal.SIGTERM if wait else signal.SIGKILL, None)
        finally:
            if locked:
                self._lock.release()
        if not first:
            self._shutdown_done.wait(max(0.0, deadline - time.monotonic()))
            return
        try:
            self._shutdown(workers, reports, wait, deadline)
        finally:
            self._shutdown_done.set()

    # -- introspection (tests, benchmarks, %schedule status) --------------------------------

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes alive now (each is also its process group id)."""
        with self._lock:
            return [w.pid for w in self._workers if w.state != _DOOMED]

    @property
    def reaper_pid(self) -> int | None:
        """Pid of the reaper process, ``None`` before the first worker started."""
        return self._reaper.pid

    # -- shutdown ------------------------------------------------------------------------------

    def _exit_hook(self) -> None:
        self._unregister_exit = None  # the lifecycle registry already dropped us
        self.shutdown(wait=True, timeout=1.0)

    def _take_all_runs(self) -> list[_Report]:
        """Take every run out of the pool, to report it cancelled (lock held)."""
        now = self._now()
        reports: list[_Report] = [
            (req, RunStatus.cancelled, "", "Cancelled before it started: the executor shut down", now)
            for req, _ in self._pending
        ]
        self._pending.clear()
        for w in self._workers:
            if w.request is not None:
                output = _worker.read_output(w.out_fd) if w.out_fd is not None else ""
                error = "Cancelled: the executor shut down and killed the worker's process tree"
                reports.append((w.request, RunStatus.cancelled, output, error, now))
                w.request = None
        self._by_run.clear()
        reports.extend(self._deferred)
        self._deferred.clear()
        return reports

    def _shutdown(
        self, workers: list[_Worker], reports: list[_Report], wait: bool, deadline: float
    ) -> None:
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # It stops after its current step; a worker it was starting meanwhile is killed
            # by the pool thread itself as soon as it sees _closing.
            thread.join(max(0.0, min(0.3, deadline - time.monotonic())))
        with _maybe_lock(self._lock, 0.1):
            workers = list(self._workers)
        if wait:
            grace_end = min(deadline, time.monotonic() + SHUTDOWN_GRACE)
            _wait_exited(workers, grace_end)
        for w in workers:  # SIGKILL the groups: grandchildren that ignored SIGTERM
            w.signal_tree(signal.SIGKILL)
        with _maybe_lock(self._lock, 0.1):
            groups, self._dying_groups = list(self._dying_groups), {}
        for g in groups:
            _kill_pgid(g, signal.SIGKILL)
            self._reaper.remove(g)
        for w in workers:  # reap (no zombies: they stall ipykernel's shutdown, research §1)
            with contextlib.suppress(Exception):
                w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.exitcode is not None:
                self._reaper.remove(w.pid)
        pool_stopped = thread is None or not thread.is_alive()
        if pool_stopped:
            with _maybe_lock(self._lock, 0.1):
                for w in workers:
                    self._release(w)
                self._workers.clear()
        if self._uses_mp_helpers:
            self._uses_mp_helpers = False
            _release_mp_helpers(deadline)
        # At least a moment for the reaper, even late: it exits as soon as it reads EOF (no
        # group is left to kill), and an unreaped one would linger as our zombie.
        self._reaper.close(max(0.1, deadline - time.monotonic()))
        if pool_stopped:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._wake_r = self._wake_w = -1
        unregister, self._unregister_exit = self._unregister_exit, None
        if unregister is not None:
            unregister()
        _live_executors.discard(self)
        for report in reports:
            self._deliver(report)

    # -- the pool thread -------------------------------------------------------------------

    def _run_pool(self, generation: int) -> None:
        with self._lock:
            if self._closing:
                return
        try:
            self._warm_up()
        except Exception:
            _log.exception("nbsched process pool: could not start the forkserver")
        while True:
            try:
                if not self._step(generation):
                    return
            except Exception:
                # This thread must not die while spawn workers live: PDEATHSIG would kill
                # them. Log and go on.
                _log.exception("nbsched process pool: internal error")
                time.sleep(0.05)  # no hot loop if the error repeats

    def _warm_up(self) -> None:
        global _mp_users
        with _mp_lock:
            _mp_users += 1
            self._uses_mp_helpers = True
            from multiprocessing import forkserver, resource_tracker

            if getattr(resource_tracker._resource_tracker, "_fd", 0) is None:
                _mp_started.add("resource_tracker")
            if self.start_method != "forkserver":
                return
            server = forkserver._forkserver
            if getattr(server, "_forkserver_pid", 0) is None:
                _mp_started.add("forkserver")
            preload = list(getattr(server, "_preload_modules", None) or ["__main__"])
            if "nbsched.executors._worker" not in preload:
                # Workers forked from the server start with our module (and cloudpickle)
                # imported: about 6 ms instead of 29 ms per worker (research §4).
                self._ctx.set_forkserver_preload([*preload, "nbsched.executors._worker"])
            with self._marker_env():
                forkserver.ensure_running()

    def _step(self, generation: int) -> bool:
        """One turn of the pool thread: wait for something to happen, then handle it.
        Returns False when the executor is shutting down (or was restarted)."""
        with self._lock:
            if self._closing or generation != self._generation:
                return False
            waitables: dict[Any, tuple[str, _Worker | None]] = {self._wake_r: ("wake", None)}
            for w in self._workers:
                if w.conn is not None:
                    waitables[w.conn] = ("conn", w)
                waitables[w.proc.sentinel] = ("exit", w)
            kill_times = [w.kill_at for w in self._workers if w.kill_at is not None]
            kill_times.extend(self._dying_groups.values())
        reaper_fd = self._reaper.pidfd
        if reaper_fd is not None:
            waitables[reaper_fd] = ("reaper", None)
        timeout: float | None = None
        if kill_times:
            timeout = max(0.0, min(kill_times) - time.monotonic())
        if reaper_fd is None and self._reaper.pid is not None:
            timeout = 1.0 if timeout is None else min(timeout, 1.0)  # poll the reaper instead
        try:
            ready = mp_connection.wait(list(waitables), timeout)
        except OSError:
            ready = []  # an fd closed under us by shutdown(); the next turn sees _closing
        for obj in ready:
            kind, who = waitables[obj]
            if kind == "wake":
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            elif kind == "conn" and who is not None:
                self._read_messages(who)
        for obj in ready:  # deaths after messages: a result sent just before exit counts
            kind, who = waitables[obj]
            if kind == "exit" and who is not None:
                self._bury(who)
        self._escalate_kills()
        if self._reaper.pid is not None and not self._reaper.alive():
            self._reaper.ensure_running()  # it died: restart it, re-registering every group
        self._fill()
        self._deliver_deferred()
        return True

    def _read_messages(self, w: _Worker) -> None:
        conn = w.conn
        while conn is not None:
            try:
                if not conn.poll():
                    return
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                self._lost(w)
                return
            kind = msg[:1]
            if kind == _worker.STARTED:
                self._started_msg(w, _DOUBLE.unpack_from(msg, 1)[0])
            elif kind == _worker.RESULT:
                self._result_msg(w, msg)
            elif kind == _worker.HELLO:
                w.ready = True

    def _started_msg(self, w: _Worker, started: float) -> None:
        with self._lock:
            request = w.request if w.state == _BUSY else None
            if request is not None:
                request.started_ts = started
        if request is not None and self._on_started is not None:
            try:
                self._on_started(request)
            except Exception:
                _log.exception("nbsched: on_started callback failed for %r", request)

    def _result_msg(self, w: _Worker, msg: bytes) -> None:
        ok, started, finished, output, error = pickle.loads(msg[1:])
        with self._lock:
            request = w.request if w.state == _BUSY else None
            if request is None:
                return  # cancelled meanwhile: already reported, drop the late result
            w.request = None
            w.state = _IDLE
            self._by_run.pop(request.run_id, None)
            self._dispatch_pending(w)
        if started is not None:
            request.started_ts = started
        status = RunStatus.succeeded if ok else RunStatus.failed
        self._report(request, status, output, error, finished)

    def _lost(self, w: _Worker) -> None:
        """EOF on a worker's pipe: it is exiting (we killed it, or it crashed)."""
        with self._lock:
            self._close_conn(w)
            if w.state == _DOOMED:
                return  # killed on purpose: its group gets SIGKILL when its grace ends
            self._doom(w, None, None)
        # It crashed: its run is over, so its descendants go now (this also releases a spawn
        # sentinel that a grandchild inherited).
        w.signal_tree(signal.SIGKILL)

    def _bury(self, w: _Worker) -> None:
        """A worker's exit sentinel fired: kill what is left of its group, reap it, report
        its run as crashed if it had one, and let _fill() replace it."""
        self._read_messages(w)  # a result it sent right before exiting still counts
        kill_at = w.kill_at
        graceful = kill_at is not None and kill_at > time.monotonic()
        if kill_at is not None and graceful:
            # Killed on purpose and still in its SIGTERM grace: its children may be cleaning
            # up. Their group gets SIGKILL when the grace ends (_escalate_kills).
            with self._lock:
                self._dying_groups[w.pid] = kill_at
        else:  # before reaping: a spawn worker's zombie still holds the pgid
            _kill_pgid(w.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            w.proc.join(1.0)  # the sentinel is ready, so this returns at once
        exitcode = w.proc.exitcode
        with self._lock:
            if w not in self._workers:
                return
            self._workers.remove(w)
            request, w.request = w.request, None
            if request is not None:
                self._by_run.pop(request.run_id, None)
            output = _worker.read_output(w.out_fd) if w.out_fd is not None else ""
            crashed_early = not w.ready
            was_doomed = w.state == _DOOMED and request is None
            self._release(w)
            failed: list[RunRequest] = []
            if crashed_early and not was_doomed:
                # It died before it was even set up: the next one would too. Fail what is
                # queued rather than spawning workers in a loop; the next submit() retries.
                failed = [req for req, _ in self._pending]
                self._pending.clear()
            elif request is not None:
                self._replace += 1
        if not graceful:
            self._reaper.remove(w.pid)
        reason = _exit_reason(w.pid, exitcode)
        now = self._now()
        if request is not None:
            if crashed_early:
                error = f"The worker process could not start: {reason}"
            else:
                error = f"The worker process running this job died: {reason}"
            self._report(request, RunStatus.crashed, output, error, now)
        for req in failed:
            error = f"Not started: a new worker process could not start ({reason})"
            self._report(req, RunStatus.crashed, "", error, now)

    def _escalate_kills(self) -> None:
        """SIGKILL the groups whose SIGTERM grace is over."""
        now = time.monotonic()
        with self._lock:
            due = [w for w in self._workers if w.kill_at is not None and w.kill_at <= now]
            for w in due:
                w.kill_at = None
            groups = [g for g, t in self._dying_groups.items() if t <= now]
            for g in groups:
                del self._dying_groups[g]
        for w in due:  # the worker has not exited yet, so its pgid is still ours to signal
            w.signal_tree(signal.SIGKILL)
        for g in groups:
            # The worker is gone; what is left of its group is its children. (A group with no
            # member left frees its number, but pids are reused only after a full cycle of
            # the pid space, not within half a second.)
            _kill_pgid(g, signal.SIGKILL)
            self._reaper.remove(g)

    def _fill(self) -> None:
        """Start workers for queued runs (and replacements), then dispatch queued runs."""
        while True:
            with self._lock:
                if self._closing:
                    return
                live = sum(1 for w in self._workers if w.state != _DOOMED)
                idle = sum(1 for w in self._workers if w.state == _IDLE)
                if live >= self.max_workers:
                    self._replace = 0
                    break
                if len(self._pending) > idle:
                    self._replace = max(0, self._replace - 1)
                elif self._replace > 0:
                    self._replace -= 1
                else:
                    break
            if not self._spawn():
                break
        with self._lock:
            for w in self._workers:
                if not self._pending:
                    break
                if w.state == _IDLE:
                    self._dispatch_pending(w)

    def _spawn(self) -> bool:
        """Start one worker (pool thread only). Returns False if it could not be started."""
        if self._reaper.pid is None or not self._reaper.alive():
            self._reaper.ensure_running()
        out_fd: int | None = None
        parent_conn = child_conn = None
        try:
            expected_ppid = os.getpid()
            if self.start_method == "forkserver":
                from multiprocessing import forkserver

                with self._marker_env():
                    forkserver.ensure_running()
                expected_ppid = getattr(forkserver._forkserver, "_forkserver_pid", None) or 0
            out_fd = _open_output_file()
            parent_conn, child_conn = mp.Pipe(duplex=True)
            proc = self._ctx.Process(
                target=_worker.main,
                args=(child_conn, _worker.InheritFd(out_fd), self._marker, expected_ppid),
                name="nbsched-worker",
                daemon=False,  # so that jobs may start multiprocessing children of their own
            )
            with self._marker_env(), _without_main_module():
                proc.start()
        except Exception as exc:
            _log.error("nbsched: cannot start a worker process: %s", exc)
            if parent_conn is not None:
                parent_conn.close()
            if out_fd is not None:
                os.close(out_fd)
            with self._lock:  # fail what is queued rather than retrying in a loop
                failed = [req for req, _ in self._pending]
                self._pending.clear()
                self._replace = 0
            for req in failed:
                error = f"Not started: cannot start a worker process ({_one_line(exc)})"
                self._report(req, RunStatus.crashed, "", error, None)
            return False
        finally:
            if child_conn is not None:
                child_conn.close()
        # Never let multiprocessing's atexit handler join it (it would wait for the job: the
        # Airflow #32706 hang); we reap our workers ourselves.
        mp_process._children.discard(proc)  # type: ignore[attr-defined]
        self._reaper.add(proc.pid)
        worker = _Worker(proc, parent_conn, out_fd)
        with self._lock:
            self._workers.append(worker)
            if self._closing:  # shutdown() began while we were starting it
                self._doom(worker, signal.SIGKILL, None)
        return True

    def _deliver_deferred(self) -> None:
        with self._lock:
            reports, self._deferred = self._deferred, []
        for report in reports:
            self._deliver(report)

    # -- helpers (the ones named "lock held" need self._lock) ---------------------------------

    def _idle_worker(self) -> _Worker | None:
        """An idle worker, preferring one that is already set up (lock held)."""
        fallback = None
        for w in self._workers:
            if w.state == _IDLE:
                if w.ready:
                    return w
                fallback = fallback or w
        return fallback

    def _assign(self, w: _Worker, request: RunRequest) -> None:
        """Lock held."""
        w.state = _BUSY
        w.request = request
        self._by_run[request.run_id] = w

    def _dispatch_pending(self, w: _Worker) -> None:
        """Give the oldest queued run to the idle worker ``w`` (lock held; pool thread)."""
        if not self._pending or self._closing:
            return
        request, payload = self._pending.popleft()
        self._assign(w, request)
        try:
            # Pool thread: nobody else closes this pipe. A big payload may block until the
            # worker has read it, which it is doing.
            w.conn.send_bytes(payload)
        except OSError:
            pass  # dead: _bury() reports the run as crashed

    def _doom(self, w: _Worker, sig: int | None, grace: float | None) -> None:
        """Mark ``w`` for death: signal its group now, SIGKILL it after ``grace`` (lock held)."""
        w.state = _DOOMED
        if grace is not None:
            w.kill_at = time.monotonic() + grace
        if sig is not None:
            w.signal_tree(sig)

    def _close_conn(self, w: _Worker) -> None:
        if w.conn is not None:
            with contextlib.suppress(OSError):
                w.conn.close()
            w.conn = None

    def _release(self, w: _Worker) -> None:
        """Close a dead worker's pipe and output file (lock held)."""
        self._close_conn(w)
        if w.out_fd is not None:
            with contextlib.suppress(OSError):
                os.close(w.out_fd)
            w.out_fd = None
        with contextlib.suppress(Exception):
            if w.proc.exitcode is not None:
                w.proc.close()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):  # full pipe: it is awake anyway
                os.write(self._wake_w, b"!")

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    def _defer(self, report: _Report) -> None:
        """Report from the pool thread rather than from inside submit() (whose caller may
        hold a lock that its on_finished needs)."""
        with self._lock:
            deferred = not self._closing
            if deferred:
                self._deferred.append(report)
        if deferred:
            self._wake()
        else:
            self._deliver(report)

    def _report(
        self,
        request: RunRequest,
        status: RunStatus,
        output: str,
        error: str | None,
        finished: float | None,
    ) -> None:
        self._deliver((request, status, output, error, self._now() if finished is None else finished))

    def _deliver(self, report: _Report) -> None:
        if self._on_finished is None:
            return
        try:
            self._on_finished(*report)
        except Exception:
            _log.exception("nbsched: on_finished callback failed for %r", report[0])

    @contextlib.contextmanager
    def _marker_env(self) -> Iterator[None]:
        """Put the worker marker into the C environment while a process is launched, so that
        it is in the exec environment of spawn workers and of the forkserver (and so visible in
        /proc/PID/environ, where tests look). os.putenv leaves os.environ, which other threads
        may be iterating, untouched."""
        with _env_lock:
            before = os.environ.get(_worker.MARKER_ENV)
            os.putenv(_worker.MARKER_ENV, self._marker)
            try:
                yield
            finally:
                if before is None:
                    os.unsetenv(_worker.MARKER_ENV)
                else:
                    os.putenv(_worker.MARKER_ENV, before)

    def _after_fork_in_child(self) -> None:
        # A child forked from this process (os.fork, multiprocessing "fork") must not keep
        # the workers' pipes open: an idle worker exits on EOF when we die. No lock: the
        # child has one thread and the lock may be held by a thread that does not exist here.
        self._closing = True
        self._shutdown_done = threading.Event()
        self._shutdown_done.set()  # a shutdown() in the child has nothing to do or wait for
        for w in self._workers:
            if w.conn is not None:
                with contextlib.suppress(OSError):
                    w.conn.close()
                w.conn = None
            if w.out_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(w.out_fd)
                w.out_fd = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1


# -- module helpers --------------------------------------------------------------------------


def _kill_pgid(pgid: int, sig: int) -> None:
    if _HAVE_KILLPG:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)


_launching = threading.local()


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """While this thread starts a process, leave the main module out of its preparation data
    (see the module docstring). The filter is installed once and does nothing for any other
    thread or at any other time."""
    from multiprocessing import spawn

    if not getattr(spawn.get_preparation_data, "_nbsched_filter", False):
        original = spawn.get_preparation_data

        def get_preparation_data(name: str) -> dict[str, Any]:
            data: dict[str, Any] = original(name)
            if getattr(_launching, "active", False):
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
            return data

        get_preparation_data._nbsched_filter = True  # type: ignore[attr-defined]
        spawn.get_preparation_data = get_preparation_data
    _launching.active = True
    try:
        yield
    finally:
        _launching.active = False


def _wait_exited(workers: list[_Worker], until: float) -> None:
    """Wait until every worker process has exited, or ``until`` (monotonic)."""
    pending: dict[Any, _Worker] = {}
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


def _open_output_file() -> int:
    """An unlinked temporary file (O_TMPFILE on Linux: nothing to clean up, ever), O_APPEND
    so that writes from the worker and its children never overwrite each other."""
    with tempfile.TemporaryFile(buffering=0) as f:
        fd = os.dup(f.fileno())  # non-inheritable
    if fcntl is not None:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)
    return fd


def _exit_reason(pid: int, exitcode: int | None) -> str:
    if exitcode is None:
        return f"pid {pid}, exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"pid {pid} was killed by {name}"
    return f"pid {pid} exited with code {exitcode}"


def _cancel_message(request: RunRequest, status: RunStatus, started: bool) -> str:
    tail = "its worker's process tree was killed" if started else "it had not started yet"
    if status is RunStatus.timed_out:
        limit = f" of {request.timeout:g} s" if request.timeout else ""
        return f"Timed out: the run exceeded its timeout{limit}; {tail}"
    if status is RunStatus.cancelled:
        return f"Cancelled; {tail}"
    return f"Stopped ({status.value}); {tail}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


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


def _release_mp_helpers(deadline: float) -> None:
    """Stop the forkserver and the resource tracker if nbsched started them and no other
    executor still uses them (research §3.2 "final2": the tracker ignores SIGTERM and stalls
    ipykernel's graceful shutdown). Bounded: a helper still held open by someone else's
    process is left to exit on its own."""
    global _mp_users
    with _mp_lock:
        _mp_users -= 1
        if _mp_users > 0:
            return
        started = set(_mp_started)
        _mp_started.clear()
    from multiprocessing import forkserver, resource_tracker

    if "forkserver" in started:
        server = forkserver._forkserver
        _stop_helper(server, "_forkserver_alive_fd", "_forkserver_pid", deadline)
        if getattr(server, "_forkserver_pid", 1) is None:
            address = getattr(server, "_forkserver_address", None)
            server._forkserver_address = None  # type: ignore[attr-defined]
            if isinstance(address, str) and not address.startswith("\0"):
                with contextlib.suppress(OSError):
                    os.unlink(address)
    if "resource_tracker" in started:
        _stop_helper(resource_tracker._resource_tracker, "_fd", "_pid", deadline)


def _stop_helper(helper: Any, fd_attr: str, pid_attr: str, deadline: float) -> None:
    """Close the helper's "alive" pipe (it exits on EOF once no other process holds it) and
    reap it, without multiprocessing's unbounded ``waitpid(pid, 0)`` in ``_stop()``."""
    lock = getattr(helper, "_lock", None)
    if lock is None or not hasattr(helper, fd_attr) or not hasattr(helper, pid_attr):
        return
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        return
    try:
        fd, pid = getattr(helper, fd_attr), getattr(helper, pid_attr)
        if fd is None or pid is None:
            return
        with contextlib.suppress(OSError):
            os.close(fd)
        setattr(helper, fd_attr, None)
        setattr(helper, pid_attr, None)
    finally:
        lock.release()
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done or time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def _after_fork_in_child() -> None:
    for executor in list(_live_executors):
        executor._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
