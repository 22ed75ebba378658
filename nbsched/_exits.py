"""Process-wide exit hooks: run nbsched's cleanup once, however the process ends.

Of the ways a kernel (or a plain program) ends, only some run Python code at all; this module
hooks every path that does:

* ``Kernel.do_shutdown``: the earliest hook of a graceful ``shutdown_request`` or restart,
  on the kernel's *control* thread. The kernel layer wraps it (``nbsched.kernel.hooks``) to
  call :func:`run_exit_callbacks`; the core knows nothing of kernels.
* ``threading._register_atexit`` and ``atexit``: ``exit()`` in a cell (which skips
  ``do_shutdown``) and any normal interpreter exit, ``sys.exit(88)`` included. Both are
  registered *after* importing ``concurrent.futures`` and ``multiprocessing.util``, whose own
  exit handlers join workers and can hang forever (Airflow #32706): both lists run last
  registered first, so ours run before theirs.
* ``SIGTERM`` and ``SIGHUP`` handlers (only when installed from the main thread, which is
  where Python runs signal handlers): jupyter_client's escalation, ``docker stop``, systemd.
  They run the callbacks, then die of the same signal (or chain to the previous handler).
  They never call ``sys.exit()``: while a cell runs, IPython swallows the ``SystemExit`` and the
  kernel keeps running.

SIGKILL, ``shutdown_kernel(now=True)`` and the death of the Jupyter server run no Python code
at all; the process executor's reaper process covers those (``nbsched/executors/_reaper.py``).

Callbacks run at most once each, newest first (like ``atexit``), errors are logged and
swallowed, and :func:`run_exit_callbacks` returns within a bounded time even if a callback
hangs: the callbacks run on a helper thread that the caller waits for with a timeout. That
also keeps a SIGTERM handler (which interrupts the main thread at an arbitrary point, possibly
while it holds a lock a callback needs) from deadlocking the process.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_exit", "run_exit_callbacks"]

_log = logging.getLogger(__name__)

#: how long :func:`run_exit_callbacks` waits for the callbacks. jupyter_client SIGTERMs the
#: kernel 2.5 s after a shutdown request, so stay well inside that.
EXIT_BUDGET = 1.5


class _ExitRegistry:
    """The callbacks and the threads running them (one per process, :data:`_registry`)."""

    def __init__(self) -> None:
        # Re-entrant: a signal handler may interrupt the main thread while it holds the lock.
        self._lock = threading.RLock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._runners: list[threading.Thread] = []

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            key = next(self._ids)
            self._callbacks[key] = callback

        def unregister() -> None:
            with self._lock:
                self._callbacks.pop(key, None)

        return unregister

    def __len__(self) -> int:
        return len(self._callbacks)

    def run(self, reason: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            # Taking them out of the registry first makes each callback run at most once, even
            # when several hooks fire at the same time (do_shutdown on the control thread, then
            # SIGTERM on the main thread).
            callbacks = list(reversed(self._callbacks.values()))
            self._callbacks.clear()
            self._runners = [t for t in self._runners if t.is_alive()]
            runners = list(self._runners)
            runner: threading.Thread | None = None
            if callbacks:
                runner = threading.Thread(
                    target=_run_all, args=(callbacks, reason), name="nbsched-exit", daemon=True
                )
                try:
                    runner.start()
                except RuntimeError:
                    # Too late in interpreter shutdown to start a thread: run them here.
                    runner = None
                if runner is not None:
                    self._runners.append(runner)
                    runners.append(runner)
        if callbacks and runner is None:
            _run_all(callbacks, reason)
        # Wait for our callbacks and for any started by an earlier, concurrent hook: a SIGTERM
        # arriving during do_shutdown must not kill the process before the cleanup is done.
        me = threading.current_thread()
        for t in runners:
            if t is not me:
                t.join(max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    _log.warning("nbsched exit callbacks still running after %.1f s", timeout)


def _run_all(callbacks: list[Callable[[], None]], reason: str) -> None:
    for cb in callbacks:
        try:
            cb()
        except BaseException:  # an exit hook must never raise into the host
            _log.exception("nbsched exit callback %r failed (%s)", cb, reason or "exit")


_registry = _ExitRegistry()


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would stay locked forever in the child.
    _registry._lock = threading.RLock()
    _registry._runners = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_install_lock = threading.Lock()
_atexit_installed = False
#: signal number -> the handler that was there before ours
_previous_handlers: dict[int, Any] = {}


def on_exit(callback: Callable[[], None]) -> Callable[[], None]:
    """Register ``callback`` to run once at process end; returns an unregister function.

    The first call installs the process-wide hooks (atexit, threading atexit and, when called
    on the main thread, SIGTERM/SIGHUP handlers). Callbacks must be fast: together they get
    :data:`EXIT_BUDGET` seconds.

    :param callback: called with no arguments, at most once
    """
    _install()
    return _registry.add(callback)


def run_exit_callbacks(reason: str = "", timeout: float = EXIT_BUDGET) -> None:
    """Run every registered callback once (newest first), logging and swallowing errors.

    Returns after at most ``timeout`` seconds even if a callback hangs (it is left running on
    a daemon thread). Safe to call from any thread, from a signal handler, and repeatedly:
    callbacks that already ran are not run again, and a call made while another call's
    callbacks are still running waits for them (bounded by the same timeout).

    :param reason: why, for the log
    :param timeout: seconds to wait for the callbacks
    """
    _registry.run(reason, timeout)


# -- installation ----------------------------------------------------------------------------


def _install() -> None:
    global _atexit_installed
    with _install_lock:
        if not _atexit_installed:
            # Import the modules whose exit handlers join workers *before* registering ours:
            # both atexit lists run LIFO, so ours then run first.
            import concurrent.futures.process  # noqa: F401
            import concurrent.futures.thread  # noqa: F401
            import multiprocessing.util  # noqa: F401

            try:
                # Runs in threading._shutdown(), before any atexit callback and before the
                # interpreter joins non-daemon threads.
                threading._register_atexit(_on_threading_exit)  # type: ignore[attr-defined]
            except RuntimeError:  # already shutting down
                pass
            atexit.register(_on_atexit)
            _atexit_installed = True
        _install_signal_handlers()


def _install_signal_handlers() -> None:
    """Install the SIGTERM/SIGHUP handlers if we are on the main thread (signal.signal only
    works there) and have not done so yet."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is None or signum in _previous_handlers:
            continue
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            # Ignored on purpose (nohup) or owned by C code we cannot chain to: leave it.
            continue
        try:
            signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # not the main interpreter
            continue
        _previous_handlers[signum] = previous


def _on_threading_exit() -> None:
    run_exit_callbacks("interpreter exit")


def _on_atexit() -> None:
    run_exit_callbacks("atexit")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    run_exit_callbacks(f"signal {signal.Signals(signum).name}")
    previous = _previous_handlers.get(signum)
    if callable(previous):
        previous(signum, frame)
        return
    # Die of the same signal, as if we had never been here. Not sys.exit(): raised inside a
    # running cell, IPython would catch the SystemExit and the kernel would live on.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
