"""The code that runs inside a process-pool worker (see ``executors/process.py``).

This module is preloaded into multiprocessing's forkserver, so every worker forked from it
starts with it (and cloudpickle) already imported: a worker then starts in about 6 ms
instead of about 29 ms spent importing them again. Keep its imports minimal: everything
imported here lives in the forkserver and in every worker.

Protocol, over one duplex :class:`multiprocessing.connection.Connection` per worker (the
parent sends one message per run and never sends the next before the result came back):

* parent → worker: ``cloudpickle.dumps((func, target, args, kwargs))``; ``func`` is ``None``
  when ``target`` (``"module:qualname"``) must be imported here. It is unpickled inside the
  run, so a payload that does not load fails that run only (not the worker, not the pool).
* worker → parent: :data:`HELLO` once set up; per run :data:`STARTED` + the body's start time
  (``time.time()``, a packed double) right before the body runs, then :data:`RESULT` +
  ``pickle((ok, started_ts, finished_ts, output, error))``. The body's return value is
  dropped: runs record status and output, not values (so an unpicklable return value cannot
  fail a run).

Setup (:func:`main`): the worker starts with SIGINT blocked (the pool launches it that way,
``_mp``), moves to a process group of its own, ignores SIGINT -- which discards a SIGINT
that arrived meanwhile for the kernel's group -- and only then unblocks it, so the job and
its children start with an ordinary signal mask and SIGINT ignored.

Output: the parent hands each worker an unlinked temporary file opened ``O_APPEND``; the
worker's fds 1 and 2 point at it for good, so ``print``, C-level writes and every
grandchild's output land there in order. Each run truncates it first and reads it back at the
end (the last :data:`OUTPUT_LIMIT` bytes). The parent holds the same file, so it can still
read what a run printed when the worker is killed (timeout, cancel) or crashes.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle  # noqa: F401  (imported here so that the forkserver preloads it)

from .payload import unpack

if sys.platform.startswith("linux"):
    import ctypes

    try:
        _libc: Any = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - static binaries without dlopen
        _libc = None
else:  # pragma: no cover - Linux is the target
    _libc = None

__all__ = ["main", "InheritFd", "read_output", "MARKER_ENV"]

#: environment variable set in every worker, inherited by everything a job starts; the value
#: is the pid of the process that owns the pool (the kernel). Tests find job processes by it.
MARKER_ENV = "NBSCHED_WORKER"
#: at most this many bytes of a run's output are kept (the end of it)
OUTPUT_LIMIT = 1 << 20

HELLO = b"H"
STARTED = b"S"
RESULT = b"R"
_DOUBLE = struct.Struct("d")
_PR_SET_PDEATHSIG = 1


class InheritFd:
    """Passes a file descriptor to a worker through ``Process(args=...)`` (parent side).

    Pickled while the process starts, it goes through multiprocessing's own fd passing
    (``reduction.DupFd``), the way a ``Connection`` does, for both spawn and forkserver.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Callable[[Any], int], tuple[Any]]:
        from multiprocessing import reduction

        return _rebuild_fd, (reduction.DupFd(self.fd),)


def _rebuild_fd(dup: Any) -> int:
    return dup.detach()  # type: ignore[no-any-return]


def read_output(fd: int, limit: int = OUTPUT_LIMIT) -> str:
    """The text in the output file ``fd`` (its last ``limit`` bytes), ``""`` if unreadable."""
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - limit)
        chunks, pos = [], start
        while pos < size:
            chunk = os.pread(fd, size - pos, pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
    except OSError:
        return ""
    text = b"".join(chunks).decode("utf-8", "replace")
    if start:
        text = f"[... {start} bytes of output omitted ...]\n{text}"
    return text


def main(conn: Any, out_fd: int, marker: str, expected_ppid: int) -> None:
    """Worker entry point: set the process up, then run jobs until the parent goes away.

    :param conn: this worker's end of the pipe to the parent
    :param out_fd: the output file (see the module docstring)
    :param marker: value for :data:`MARKER_ENV`
    :param expected_ppid: the parent we must have (the forkserver, or the kernel for spawn);
        if it is already gone we exit at once
    """
    _setup(conn, out_fd, marker, expected_ppid)
    try:
        conn.send_bytes(HELLO)
        while True:
            try:
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the parent is gone or closed our pipe: nothing left to do
            _run(msg, conn, out_fd)
    except OSError:
        return  # the parent went away while we were reporting


def _setup(conn: Any, out_fd: int, marker: str, expected_ppid: int) -> None:
    if hasattr(os, "setpgid"):
        # Own process group: the kernel's killpg(SIGINT) on an interrupt misses us, and one
        # killpg reaches the whole job tree, grandchildren included.
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the job's children too
    if hasattr(signal, "pthread_sigmask"):
        # Blocked since launch (see the module docstring); ignored now, so unblocking it
        # cannot deliver the kernel's SIGINT, and the job's processes get a plain mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # Never ignore SIGTERM: it is how a job is stopped with a grace period before SIGKILL
    # (an ignored SIGTERM would also be inherited by everything the job starts).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _set_pdeathsig(expected_ppid)
    os.environ[MARKER_ENV] = marker
    # Nothing the job starts may keep our pipe to the parent open (the parent detects our
    # death by EOF on it), nor the multiprocessing helpers' "alive" pipes.
    os.set_inheritable(conn.fileno(), False)
    _no_inherit_mp_fds()
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.set_inheritable(out_fd, False)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            # line buffered: print() output interleaves with grandchildren's output in order
            reconfigure(line_buffering=True)


def _set_pdeathsig(expected_ppid: int) -> None:
    """SIGKILL us when our parent dies (Linux only; elsewhere the reaper alone covers it)."""
    if _libc is None:
        return
    ulong = ctypes.c_ulong
    if _libc.prctl(_PR_SET_PDEATHSIG, ulong(signal.SIGKILL), ulong(0), ulong(0), ulong(0)):
        return
    if expected_ppid and os.getppid() != expected_ppid:
        os._exit(1)  # the parent died before prctl(): the signal will never come


def _no_inherit_mp_fds() -> None:
    try:
        from multiprocessing import forkserver, resource_tracker

        fds = [
            getattr(forkserver._forkserver, "_forkserver_alive_fd", None),
            getattr(resource_tracker._resource_tracker, "_fd", None),
        ]
    except (ImportError, AttributeError):  # pragma: no cover - other Python versions
        return
    for fd in fds:
        if fd is not None:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _run(msg: bytes, conn: Any, out_fd: int) -> None:
    os.ftruncate(out_fd, 0)
    pid = os.getpid()
    try:
        func, args, kwargs = unpack(msg)
    except BaseException as exc:  # a bad payload fails this run only
        why = "Could not load the job in the worker process:\n" + _format(exc, skip=0)
        _report(conn, out_fd, False, None, time.time(), why)
        return
    started = time.time()
    conn.send_bytes(STARTED + _DOUBLE.pack(started))
    error: str | None = None
    try:
        func(*args, **kwargs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report them
        ok, error = False, _format(exc, skip=1)
    else:
        ok = True
    finished = time.time()
    if os.getpid() != pid:
        os._exit(0)  # the job forked and its child returned here: it is not the worker
    _report(conn, out_fd, ok, started, finished, error)


def _format(exc: BaseException, skip: int) -> str:
    tb = exc.__traceback__
    for _ in range(skip):  # drop our own frame(s): the traceback starts in the job
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _report(
    conn: Any, out_fd: int, ok: bool, started: float | None, finished: float, error: str | None
) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    output = read_output(out_fd)
    result = (ok, started, finished, output, error)
    conn.send_bytes(RESULT + pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
