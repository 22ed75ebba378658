"""Warm processes that start a Dask worker's function runs (see :mod:`._dask_remote`).

Each function run needs a process of its own on the worker (so that a timeout or
``cancel_run`` can kill it with its whole tree, and its file-descriptor output can be
captured), but starting a Python interpreter and importing the run machinery costs about
200 ms a run. So each worker thread that runs nbsched jobs keeps one **warm process**: a
Python started once, on the thread's first run, with that machinery already imported. It
runs no job itself: for each run it **forks** a run process, a copy of itself, which runs
the job and exits. That keeps every guarantee of a process per run at the cost of a
``fork`` (about 1 ms):

* **Nothing leaks from one run into the next.** Each run starts as a fresh copy of the warm
  process, which no job ever ran in: module globals, imports, ``sys.path`` changes, signal
  handlers, cwd and environment changes of a run all end with its process. (The process
  executor is different: its workers run job after job in one interpreter.) The run gets
  the worker's cwd and environment as they are when it starts, as a child the worker
  started itself would.
* **Nothing a run starts outlives it.** The run process leads a process group of its own.
  When it exits, the warm process kills that group (``SIGKILL``) *before* reaping the run
  process -- the zombie keeps the group's id from being reused -- and only then says the
  run is over and takes the next one: a run's leftover children and grandchildren never
  live into the next run. (A descendant that leaves the group, ``setsid`` or ``setpgid``,
  escapes this as it escapes every ``killpg`` in nbsched.)
* **Stopping a run** (timeout, ``cancel_run``) signals the run's group (``SIGTERM``, then
  ``SIGKILL``); the warm process is not in it and stays ready for the thread's next run.
* **Output**: the worker hands each run two unnamed files (passed over the warm process's
  socket, ``SCM_RIGHTS``): the run's fds 1 and 2 (``O_APPEND``: everything the run and its
  children print, in order, C-level writes included) and the file it writes how it ended
  to. The worker keeps both open, so it reads what a killed run printed, and nothing is
  ever left on disk.
* **When the worker dies**: the warm process has ``PR_SET_PDEATHSIG=SIGKILL`` (Linux) tied to
  the worker thread that started it -- its only user: its runs are that thread's runs, so it
  is never busy when that thread ends -- and each run process has it tied to the warm
  process; the warm process's group and each run's group are registered with the worker's
  :class:`~nbsched.executors.reaper.Reaper`, which kills them (grandchildren included) once
  the worker is gone, however it died. A warm process whose socket reaches EOF (the worker
  closed it, or is gone) exits.

Protocol on the socket (one run at a time): worker → warm process: an 8-byte length (the
two files attached) then ``pickle((cwd, environ, payload))``; warm process → worker:
``b"P"`` + the run process's pid once it leads its group, then ``b"E"`` + its exit code
(``-N`` for signal N, as :func:`os.waitstatus_to_exitcode`) once its group is dead.

Run as a program (``python -m nbsched.executors._dask_warm FD``) this module is the warm
process; the run processes it forks return from :func:`_serve`, run the job at the
program's top level, and end as a Python program ends (non-daemon threads joined, ``atexit``
handlers run, streams flushed) but without the interpreter's teardown (:func:`_exit`).
A warm process holds about 11 MB of memory of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import gc
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from typing import Any

from ._pool import kill_group
from .payload import unpack
from .reaper import Reaper

__all__ = [
    "NotSent", "WarmLost", "WarmProcess", "drop", "for_this_thread", "read_result", "unnamed_file",
]

_HEAD = struct.Struct(">Q")
_MSG = struct.Struct(">ci")  # b"P" + pid, b"E" + exit code
_local = threading.local()


class WarmLost(Exception):
    """The warm process died, or its socket broke."""


class NotSent(WarmLost):
    """The warm process was gone before it got the run: the run certainly never started."""


class WarmProcess:
    """The worker's handle on one warm process; used by one thread, one run at a time.

    :param reaper: the worker's reaper, with which its process group is registered
    """

    def __init__(self, reaper: Reaper) -> None:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # out of the worker's group; its runs get their own
                preexec_fn=child_setup,  # noqa: PLW1509 - only async-signal-safe calls in it
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = proc.pid
        self._proc = proc
        self._sock = ours
        self._buf = b""
        reaper.add(proc.pid)
        # Also when the thread holding it ends (its thread-local goes) or at exit.
        self._finalizer = weakref.finalize(self, _discard, proc, ours, reaper)

    def __repr__(self) -> str:
        return f"<WarmProcess pid={self.pid}>"

    def alive(self) -> bool:
        """True while the warm process runs."""
        return self._proc.poll() is None

    def start(self, payload: bytes, out_fd: int, result_fd: int) -> int:
        """Start a run: fork a run process for ``payload`` (see :mod:`.payload`), whose fds 1
        and 2 are ``out_fd`` and which writes how it ended to ``result_fd``.

        :returns: the run process's pid, which is also its process group's id
        :raises WarmLost: the warm process is gone; :class:`NotSent` when it was gone before
            it got the run, which then certainly never started
        """
        try:
            cwd: str | None = os.getcwd()
        except OSError:  # the worker's folder was removed: the run keeps the warm one's
            cwd = None
        body = pickle.dumps((cwd, dict(os.environ), payload), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._sock.settimeout(None)
            socket.send_fds(self._sock, [_HEAD.pack(len(body))], [out_fd, result_fd])
            self._sock.sendall(body)
        except OSError as exc:
            raise NotSent(f"the warm process (pid {self.pid}) is gone: {exc}") from None
        reply = self._recv(None)
        if reply is None or reply[0] != b"P":
            raise WarmLost(f"the warm process (pid {self.pid}) answered {reply!r}")
        return reply[1]

    def wait(self, timeout: float | None) -> int | None:
        """The run's exit code once its process group is dead, ``None`` if ``timeout``
        seconds pass first (the run goes on).

        :raises WarmLost: the warm process died (and with it the run, by its PDEATHSIG)
        """
        reply = self._recv(timeout)
        if reply is None:
            return None
        if reply[0] != b"E":
            raise WarmLost(f"the warm process (pid {self.pid}) answered {reply!r}")
        return reply[1]

    def discard(self) -> None:
        """Kill the warm process (and its group), reap it, forget it."""
        self._finalizer()

    def _recv(self, timeout: float | None) -> tuple[bytes, int] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buf) < _MSG.size:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._sock.settimeout(left)
                chunk = self._sock.recv(_MSG.size - len(self._buf))
            except (TimeoutError, BlockingIOError):  # (the latter: a timeout of 0)
                return None  # (what arrived of a message stays in the buffer)
            except OSError as exc:
                raise WarmLost(f"lost the warm process (pid {self.pid}): {exc}") from None
            if not chunk:
                code = self._proc.poll()
                how = "is gone" if code is None else _ended(code)
                raise WarmLost(f"the warm process (pid {self.pid}) {how}")
            self._buf += chunk
        kind, number = _MSG.unpack(self._buf[: _MSG.size])
        self._buf = self._buf[_MSG.size :]
        return kind, number


def for_this_thread(reaper: Reaper) -> WarmProcess:
    """This thread's warm process, started if it has none (or it died)."""
    warm: WarmProcess | None = getattr(_local, "warm", None)
    if warm is not None and not warm.alive():
        warm.discard()
        warm = None
    if warm is None:
        warm = _local.warm = WarmProcess(reaper)
    return warm


def drop(warm: WarmProcess) -> None:
    """Discard ``warm`` (it failed a run); the thread's next run starts a new one."""
    if getattr(_local, "warm", None) is warm:
        del _local.warm
    warm.discard()


def unnamed_file(*, append: bool = False) -> int:
    """A read-write file with no name (``O_TMPFILE`` on Linux): nothing to clean up, ever.
    ``append``: ``O_APPEND``, so that writes of several processes never overwrite each other."""
    with tempfile.TemporaryFile(buffering=0) as f:
        fd = os.dup(f.fileno())  # non-inheritable
    if append:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    return fd


def read_result(fd: int) -> tuple[Any, ...] | None:
    """What the run process wrote to its result file, ``None`` if nothing whole (it died)."""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        result = pickle.loads(data)
    except Exception:  # OSError, EOFError, UnpicklingError: died before or while writing
        return None
    return result if isinstance(result, tuple) and len(result) == 4 else None


def _discard(proc: subprocess.Popen[bytes], sock: socket.socket, reaper: Reaper) -> None:
    sock.close()  # (EOF: an idle warm process exits by itself)
    kill_group(proc.pid, signal.SIGKILL)  # before reaping: the zombie keeps the group id
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(1.0)
    if proc.returncode is not None:
        reaper.remove(proc.pid)


def _ended(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


_libc: Any = None
if sys.platform == "linux":
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def child_setup() -> None:
    """In a child of the worker between fork and exec (a warm process, a notebook run's
    child): die with the worker thread that started it (Linux), ignore interrupts (and so do
    the runs a warm process forks)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- the warm process -------------------------------------------------------------------------


def _serve(fd: int) -> tuple[int, bytes]:
    """The warm process: fork a run process per run the worker sends, until EOF. Returns only
    in a run process: its result file and the job's payload."""
    sock = socket.socket(fileno=fd)
    me = os.getpid()
    gc.freeze()  # its objects stay out of the runs' collections: no copy-on-write of them
    run = 0
    try:
        while True:
            head, fds, _, _ = socket.recv_fds(sock, _HEAD.size, 2)
            head += _recv_exactly(sock, _HEAD.size - len(head)) if head else b""
            if not head or len(fds) != 2:
                os._exit(0)  # EOF: the worker is done with us, or gone
            body = _recv_exactly(sock, _HEAD.unpack(head)[0])
            out_fd, result_fd = fds
            run = os.fork()
            if run == 0:
                sock.close()
                return _become_run(me, out_fd, result_fd, body)
            os.close(out_fd)
            os.close(result_fd)
            with contextlib.suppress(OSError):  # (the run does it too: whichever comes first)
                os.setpgid(run, run)
            sock.sendall(_MSG.pack(b"P", run))
            code = _reap(run)
            run = 0
            sock.sendall(_MSG.pack(b"E", code))
    except (OSError, EOFError):  # the worker is gone: so is the run
        if run:
            kill_group(run, signal.SIGKILL)
        os._exit(0)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _reap(pid: int) -> int:
    """Wait for run process ``pid`` to end, kill what is left of its group, then reap it."""
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped yet
    kill_group(pid, signal.SIGKILL)  # its leftovers: the group id is still the zombie's
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _become_run(parent: int, out_fd: int, result_fd: int, body: bytes) -> tuple[int, bytes]:
    """In a freshly forked run process: its own group, death with the warm process, its
    output files, the worker's cwd and environment."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)  # the warm process died before prctl(): the signal will never come
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    os.set_inheritable(result_fd, False)
    cwd, environ, payload = pickle.loads(body)
    if environ != os.environ:
        os.environ.clear()
        os.environ.update(environ)
    if cwd is not None and cwd != os.getcwd():
        with contextlib.suppress(OSError):
            os.chdir(cwd)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)  # prints interleave with children's output in order
    return result_fd, payload


def _run(result_fd: int, payload: bytes) -> None:
    """The run process: run the job, write ``(ok, started, finished, error)`` to its result
    file."""
    pid = os.getpid()
    started: float | None = None
    try:
        func, args, kwargs = unpack(payload)
        started = time.time()
        func(*args, **kwargs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report them
        tb = exc.__traceback__.tb_next if started is not None and exc.__traceback__ else None
        error = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
        result: tuple[Any, ...] = (False, started, time.time(), error)
    else:
        result = (True, started, time.time(), None)
    if os.getpid() != pid:
        os._exit(0)  # the job forked and its child returned here: it is not the run
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with os.fdopen(result_fd, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)


def _exit() -> None:
    """End the run process as a Python program ends -- non-daemon threads joined, ``atexit``
    handlers run, streams flushed -- but without the interpreter's teardown, which touches
    every object the warm process holds and so copies its memory page by page (15 ms a run,
    ten times the fork). multiprocessing ends its forked children the same way."""
    try:
        join_threads = getattr(threading, "_shutdown", None)  # what Python's exit calls
        if join_threads is not None:
            join_threads()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(0)


if __name__ == "__main__":
    _run(*_serve(int(sys.argv[1])))
    _exit()
