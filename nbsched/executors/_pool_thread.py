"""The pool thread: one ``nbsched-procpool`` thread per pool, alive from the executor's start
to its shutdown.

It **creates every worker**: ``PR_SET_PDEATHSIG`` fires when the *thread* that created a
process exits, not the process, so spawn workers must be created by a thread that lives as
long as the pool (a thread calling ``submit()`` may end any time). It launches them, the
forkserver and the reaper with SIGINT blocked (``_mp``).

It **waits** on a wake-up pipe, every worker's pipe and exit sentinel, and the reaper's pidfd,
and then:

* reads ``STARTED`` and ``RESULT`` messages and reports runs;
* notices deaths: EOF on a pipe, or a sentinel. A dead worker's run is reported ``crashed``,
  what is left of its process group is killed, and a replacement is started. A worker that
  dies before it is even set up fails what is queued instead (the next one would die too);
* escalates kills: a doomed worker's group gets SIGKILL when its SIGTERM grace is over, or at
  once when the worker died (grandchildren that ignore SIGTERM die too);
* restarts the reaper if it died (re-registering every group);
* starts workers for queued runs, up to ``max_workers``, and dispatches queued runs.

It never dies of an error while the pool runs (spawn workers would die with it): errors are
logged and the loop goes on. It stops at its next turn once the pool is closing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import tempfile
import threading
import time
from multiprocessing import connection as mp_connection
from multiprocessing import process as mp_process
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..abc import RunRequest
from ..jobs import RunStatus
from . import _mp, _worker
from ._pool import BUSY, DOOMED, IDLE, Pool, Worker, kill_group, one_line

__all__ = ["start"]

_log = logging.getLogger(__name__)

_DOUBLE = struct.Struct("d")


def start(pool: Pool) -> threading.Thread:
    """Start ``pool``'s thread (and, from it, the forkserver, so the first job does not wait
    for it)."""
    thread = threading.Thread(target=_run, args=(pool,), name="nbsched-procpool", daemon=True)
    pool.thread = thread
    thread.start()
    return thread


def _run(pool: Pool) -> None:
    with pool.lock:
        if pool.closing:
            return
    try:
        _mp.warm_up(pool, pool.ctx, pool.marker)
    except _mp.Released:
        return
    except Exception:
        _log.exception("nbsched process pool: could not start the forkserver")
    while True:
        try:
            if not _step(pool):
                return
        except Exception:
            # This thread must not die while spawn workers live: PDEATHSIG would kill
            # them. Log and go on.
            _log.exception("nbsched process pool: internal error")
            time.sleep(0.05)  # no hot loop if the error repeats


def _step(pool: Pool) -> bool:
    """One turn of the pool thread: wait for something to happen, then handle it.
    Returns False when the pool is closing."""
    with pool.lock:
        if pool.closing:
            return False
        waitables: dict[Any, tuple[str, Worker | None]] = {pool.wake_r: ("wake", None)}
        for w in pool.workers:
            if w.conn is not None:
                waitables[w.conn] = ("conn", w)
            waitables[w.proc.sentinel] = ("exit", w)
        kill_times = [w.kill_at for w in pool.workers if w.kill_at is not None]
        kill_times.extend(pool.dying_groups.values())
    reaper_fd = pool.reaper.pidfd
    if reaper_fd is not None:
        waitables[reaper_fd] = ("reaper", None)
    timeout: float | None = None
    if kill_times:
        timeout = max(0.0, min(kill_times) - time.monotonic())
    if reaper_fd is None and pool.reaper.pid is not None:
        timeout = 1.0 if timeout is None else min(timeout, 1.0)  # poll the reaper instead
    try:
        ready = mp_connection.wait(list(waitables), timeout)
    except OSError:
        ready = []  # an fd closed under us by shutdown(); the next turn sees closing
    for obj in ready:
        kind, who = waitables[obj]
        if kind == "wake":
            with contextlib.suppress(OSError):
                os.read(pool.wake_r, 4096)
        elif kind == "conn" and who is not None:
            _read_messages(pool, who)
    for obj in ready:  # deaths after messages: a result sent just before exit counts
        kind, who = waitables[obj]
        if kind == "exit" and who is not None:
            _bury(pool, who)
    _escalate_kills(pool)
    if pool.reaper.pid is not None and not pool.reaper.alive():
        _ensure_reaper(pool)  # it died: restart it, re-registering every group
    _fill(pool)
    with pool.lock:
        reports, pool.deferred = pool.deferred, []
    for report in reports:
        pool.deliver(report)
    return True


def _read_messages(pool: Pool, w: Worker) -> None:
    conn = w.conn
    while conn is not None:
        try:
            if not conn.poll():
                return
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            _lost(pool, w)
            return
        kind = msg[:1]
        if kind == _worker.STARTED:
            _started_msg(pool, w, _DOUBLE.unpack_from(msg, 1)[0])
        elif kind == _worker.RESULT:
            _result_msg(pool, w, msg)
        elif kind == _worker.HELLO:
            w.ready = True


def _started_msg(pool: Pool, w: Worker, started: float) -> None:
    with pool.lock:
        request = w.request if w.state == BUSY else None
        if request is not None:
            request.started_ts = started
    if request is not None:
        try:
            pool.on_started(request)
        except Exception:
            _log.exception("nbsched: on_started callback failed for %r", request)


def _result_msg(pool: Pool, w: Worker, msg: bytes) -> None:
    ok, started, finished, output, error = pickle.loads(msg[1:])
    with pool.lock:
        request = w.request if w.state == BUSY else None
        if request is None:
            return  # cancelled meanwhile: already reported, drop the late result
        w.request = None
        w.state = IDLE
        pool.by_run.pop(request.run_id, None)
        pool.dispatch_pending(w)
    if started is not None:
        request.started_ts = started
    status = RunStatus.succeeded if ok else RunStatus.failed
    pool.report(request, status, output, error, finished)


def _lost(pool: Pool, w: Worker) -> None:
    """EOF on a worker's pipe: it is exiting (we killed it, or it crashed)."""
    with pool.lock:
        pool.close_conn(w)
        if w.state == DOOMED:
            return  # killed on purpose: its group gets SIGKILL when its grace ends
        pool.doom(w, None, None)
    # It crashed: its run is over, so its descendants go now (this also releases a spawn
    # sentinel that a grandchild inherited).
    w.signal_tree(signal.SIGKILL)


def _bury(pool: Pool, w: Worker) -> None:
    """A worker's exit sentinel fired: kill what is left of its group, reap it, report
    its run as crashed if it had one, and let _fill() replace it."""
    _read_messages(pool, w)  # a result it sent right before exiting still counts
    kill_at = w.kill_at
    graceful = kill_at is not None and kill_at > time.monotonic()
    if kill_at is not None and graceful:
        # Killed on purpose and still in its SIGTERM grace: its children may be cleaning
        # up. Their group gets SIGKILL when the grace ends (_escalate_kills).
        with pool.lock:
            pool.dying_groups[w.pid] = kill_at
    else:  # before reaping: a spawn worker's zombie still holds the pgid
        kill_group(w.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        w.proc.join(1.0)  # the sentinel is ready, so this returns at once
    exitcode = w.proc.exitcode
    with pool.lock:
        if w not in pool.workers:
            return
        pool.workers.remove(w)
        request, w.request = w.request, None
        if request is not None:
            pool.by_run.pop(request.run_id, None)
        output = "" if request is None else w.output(request)
        crashed_early = not w.ready
        was_doomed = w.state == DOOMED and request is None
        pool.release(w)
        failed: list[RunRequest] = []
        if crashed_early and not was_doomed:
            # It died before it was even set up: the next one would too. Fail what is
            # queued rather than spawning workers in a loop; the next submit() retries.
            failed = [req for req, _ in pool.pending]
            pool.pending.clear()
        elif request is not None:
            pool.replace += 1
    if not graceful:
        pool.reaper.remove(w.pid)
    reason = _exit_reason(w.pid, exitcode)
    now = pool.now()
    if request is not None:
        if crashed_early:
            error = f"The worker process could not start: {reason}"
        else:
            error = f"The worker process running this job died: {reason}"
        pool.report(request, RunStatus.crashed, output, error, now)
    for req in failed:
        error = f"Not started: a new worker process could not start ({reason})"
        pool.report(req, RunStatus.crashed, "", error, now)


def _escalate_kills(pool: Pool) -> None:
    """SIGKILL the groups whose SIGTERM grace is over."""
    now = time.monotonic()
    with pool.lock:
        due = [w for w in pool.workers if w.kill_at is not None and w.kill_at <= now]
        for w in due:
            w.kill_at = None
        groups = [g for g, t in pool.dying_groups.items() if t <= now]
        for g in groups:
            del pool.dying_groups[g]
    for w in due:  # the worker has not exited yet, so its pgid is still ours to signal
        w.signal_tree(signal.SIGKILL)
    for g in groups:
        # The worker is gone; what is left of its group is its children. (A group with no
        # member left frees its number, but pids are reused only after a full cycle of
        # the pid space, not within half a second.)
        kill_group(g, signal.SIGKILL)
        pool.reaper.remove(g)


def _fill(pool: Pool) -> None:
    """Start workers for queued runs (and replacements), then dispatch queued runs."""
    while True:
        with pool.lock:
            if pool.closing:
                return
            live = sum(1 for w in pool.workers if w.state != DOOMED)
            idle = sum(1 for w in pool.workers if w.state == IDLE)
            if live >= pool.max_workers:
                pool.replace = 0
                break
            if len(pool.pending) > idle:
                pool.replace = max(0, pool.replace - 1)
            elif pool.replace > 0:
                pool.replace -= 1
            else:
                break
        if not _spawn(pool):
            break
    with pool.lock:
        for w in pool.workers:
            if not pool.pending:
                break
            if w.state == IDLE:
                pool.dispatch_pending(w)


def _ensure_reaper(pool: Pool) -> None:
    with _mp.sigint_blocked():
        pool.reaper.ensure_running()


def _spawn(pool: Pool) -> bool:
    """Start one worker (pool thread only). Returns False if it could not be started."""
    if pool.reaper.pid is None or not pool.reaper.alive():
        _ensure_reaper(pool)
    out_fd: int | None = None
    parent_conn = child_conn = None
    try:
        out_fd = _open_output_file()
        parent_conn, child_conn = pool.ctx.Pipe(duplex=True)
        with _mp.launching(pool, pool.marker):
            expected_ppid = _mp.worker_parent(pool.ctx)
            proc = pool.ctx.Process(
                target=_worker.main,
                args=(child_conn, _worker.InheritFd(out_fd), pool.marker, expected_ppid),
                name="nbsched-worker",
                daemon=False,  # so that jobs may start multiprocessing children of their own
            )
            proc.start()
    except Exception as exc:
        if parent_conn is not None:
            parent_conn.close()
        if out_fd is not None:
            os.close(out_fd)
        with pool.lock:  # fail what is queued rather than retrying in a loop
            closing = pool.closing
            failed = [req for req, _ in pool.pending]
            pool.pending.clear()
            pool.replace = 0
        if not closing:  # (a launch refused because the pool is closing is no error)
            _log.error("nbsched: cannot start a worker process: %s", exc)
        for req in failed:
            error = f"Not started: cannot start a worker process ({one_line(exc)})"
            pool.report(req, RunStatus.crashed, "", error, None)
        return False
    finally:
        if child_conn is not None:
            child_conn.close()
    # Never let multiprocessing's atexit handler join it (it would wait for the job, and
    # a program could hang at exit); we reap our workers ourselves.
    mp_process._children.discard(proc)  # type: ignore[attr-defined]
    pool.reaper.add(proc.pid)
    worker = Worker(proc, parent_conn, out_fd)
    with pool.lock:
        pool.workers.append(worker)
        if pool.closing:  # the shutdown began while we were starting it
            pool.doom(worker, signal.SIGKILL, None)
    return True


def _open_output_file() -> int:
    """A worker's output file: unlinked (O_TMPFILE on Linux: nothing to clean up, ever), and
    O_APPEND, so that writes from the worker and its children never overwrite each other."""
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
