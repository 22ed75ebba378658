"""The reaper: a tiny process that kills the worker process groups once their parent is gone.

SIGKILL of the kernel's pid (the OOM killer), ``shutdown_kernel(now=True)`` and the death of
the Jupyter server run no Python code in the kernel, so no hook can clean up after them.
``PR_SET_PDEATHSIG`` covers only direct children: a forkserver worker's parent is the
forkserver, and a job's grandchildren are nobody's direct children. The reaper covers every
case, grandchildren included:

* it runs in its own session (``start_new_session=True``), so no killpg aimed at the kernel's
  process group (interrupt, ``now=True``, jupyter_client's SIGTERM) reaches it, and it ignores
  SIGINT and SIGHUP. It is launched with SIGINT blocked (the pool thread does that), so the
  kernel's group SIGINT cannot kill it between fork and ``setsid``;
* its stdin is a pipe whose only writer is the parent. The parent writes ``+PGID`` when a
  worker starts and ``-PGID`` once the worker's group is dead;
* on EOF (the parent is gone, however it died) it sends SIGTERM to every registered group,
  waits up to 0.5 s for them to empty, sends SIGKILL, and exits. It runs no user code.

:class:`Reaper` is the parent's side: it starts the process, keeps the set of registered
groups, restarts the reaper (re-registering every group) if it dies, and closes the pipe at
shutdown. In a child forked from the parent (``os.fork``, multiprocessing's ``fork``) our copy
of the pipe's write end is closed at once: a child holding it would keep the reaper from
ever seeing EOF.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import weakref

__all__ = ["REAPER_SOURCE", "Reaper"]

_log = logging.getLogger(__name__)

#: The whole reaper program (run with ``python -I -S -c``). Keep it tiny and dependency-free.
REAPER_SOURCE = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:                  # EOF once the parent (the only writer) is gone
    if line[:1] == b"+": groups.add(int(line[1:]))
    elif line[:1] == b"-": groups.discard(int(line[1:]))
def alive(g):
    try: os.killpg(g, 0); return True
    except OSError: return False
for sig in (signal.SIGTERM, signal.SIGKILL):
    for g in groups:
        try: os.killpg(g, sig)
        except OSError: pass
    end = time.monotonic() + 0.5
    while sig == signal.SIGTERM and any(map(alive, groups)) and time.monotonic() < end:
        time.sleep(0.02)
"""

#: environment variable set on the reaper process (value: the parent's pid), for tests and
#: for humans reading ``ps e``
REAPER_ENV = "NBSCHED_REAPER"

_live: weakref.WeakSet[Reaper] = weakref.WeakSet()


class Reaper:
    """The parent's handle on the reaper process. Thread-safe.

    :param executable: the Python interpreter to run it with (default ``sys.executable``)
    """

    def __init__(self, executable: str | None = None) -> None:
        self._executable = executable or sys.executable
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd: int | None = None  # write end of the reaper's stdin
        self._pidfd: int | None = None
        self._groups: set[int] = set()
        self._closed = False
        _live.add(self)

    # -- state -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The reaper's pid, ``None`` if it is not running."""
        proc = self._proc
        return None if proc is None else proc.pid

    @property
    def pidfd(self) -> int | None:
        """A pidfd that becomes readable when the reaper exits (Linux 5.3+), else ``None``."""
        return self._pidfd

    def alive(self) -> bool:
        """True if the reaper process is running."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    # -- operations --------------------------------------------------------------------------

    def ensure_running(self) -> bool:
        """Start the reaper, or restart it if it died (re-registering every group).

        :returns: whether a reaper is running now
        """
        with self._lock:
            if self._closed:
                return False
            if self._proc is not None and self._proc.poll() is None:
                return True
            if self._proc is not None:
                _log.warning(
                    "nbsched reaper (pid %d) died with status %s; restarting it",
                    self._proc.pid,
                    self._proc.returncode,
                )
                self._release()
            return self._start()

    def add(self, pgid: int) -> None:
        """Register a worker's process group."""
        with self._lock:
            self._groups.add(pgid)
            self._send(b"+%d\n" % pgid)

    def remove(self, pgid: int) -> None:
        """Forget a process group that is known to be dead."""
        with self._lock:
            if pgid in self._groups:
                self._groups.discard(pgid)
                self._send(b"-%d\n" % pgid)

    def close(self, timeout: float = 0.5) -> None:
        """Close the pipe and reap the reaper. Groups still registered are then killed by it
        (TERM, up to 0.5 s, KILL): unregister them first for a quick exit. Never blocks for
        more than ``timeout`` seconds. Idempotent."""
        with self._lock:
            self._closed = True
            proc = self._proc
            self._close_fd()
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.debug("nbsched reaper (pid %d) still busy after %.2f s", proc.pid, timeout)
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    # -- internals (called with self._lock held) ---------------------------------------------

    def _start(self) -> bool:
        if not self._executable:
            _log.warning("nbsched: no Python executable to run the reaper with")
            return False
        env = dict(os.environ)
        env[REAPER_ENV] = str(os.getpid())
        try:
            proc = subprocess.Popen(
                [self._executable, "-I", "-S", "-c", REAPER_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of every killpg aimed at our group
                close_fds=True,
                env=env,
                bufsize=0,
            )
        except OSError as exc:
            _log.warning("nbsched: cannot start the reaper process: %s", exc)
            return False
        assert proc.stdin is not None
        self._proc = proc
        # Keep the raw fd: each "+pgid\n" line is one os.write() below PIPE_BUF, so atomic.
        self._fd = os.dup(proc.stdin.fileno())
        os.set_inheritable(self._fd, False)
        proc.stdin.close()
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        for pgid in self._groups:
            self._send(b"+%d\n" % pgid)
        return True

    def _send(self, line: bytes) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, line)
        except OSError:
            # EPIPE: the reaper died. The caller's next ensure_running() restarts it and
            # re-sends every group, this one included.
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _release(self) -> None:
        self._close_fd()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._proc is not None:
            self._proc.poll()  # reap it (no zombie)
        self._proc = None

    def _after_fork_in_child(self) -> None:
        # No locking: the child has a single thread and the lock may have been held by a
        # thread that does not exist here.
        self._closed = True
        self._close_fd()
        if self._pidfd is not None:
            try:
                os.close(self._pidfd)
            except OSError:
                pass
            self._pidfd = None
        # self._proc is kept: dropping it would make Popen.__del__ warn about a process that
        # is not even ours in this child.


def _after_fork_in_child() -> None:
    for reaper in list(_live):
        reaper._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
