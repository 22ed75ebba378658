"""What the process pool needs from multiprocessing's internals, in one place.

The pool starts its workers through multiprocessing (forkserver, else spawn), which brings
two helper processes of its own: the **forkserver** (every worker is forked from it, with
``_worker`` and cloudpickle already imported) and the **resource tracker**. multiprocessing
starts them once per process, on first use, and never stops them. This module:

* **Launches quietly** (:func:`launching`). The helpers, and a worker until it moves to a
  process group of its own, are in the kernel's process group, and jupyter_client sends that
  whole group SIGINT on every interrupt and at the start of every shutdown. A Python
  interpreter that gets SIGINT while it starts dies of it: silently before its handler is
  installed, with a ``KeyboardInterrupt`` traceback (``Fatal Python error: init_import_site``
  during ``site``) after, both written to the kernel's stderr, i.e. the server log -- and a
  dead forkserver fails the first job. So every launch happens with SIGINT *blocked* in the
  launching thread. The mask is inherited across fork and exec, so the signal waits, pending,
  until the child sets its own disposition: the forkserver and the resource tracker ignore
  SIGINT, a worker ignores it once it is in its own group (``_worker``) and then unblocks
  it for the job, and setting a pending signal to ``SIG_IGN`` discards it. The reaper is
  launched the same way (:func:`sigint_blocked`), although it leaves the group at once.
* **Marks** what it launches: ``NBSCHED_WORKER=<owner pid>`` is put in the C environment for
  the launch only (``os.putenv``: ``os.environ``, which other threads may be iterating, is
  left alone), so the forkserver, the tracker and spawn workers carry it in
  ``/proc/PID/environ`` from their first instruction.
* **Leaves the program's main module out** of what a spawn or forkserver child prepares:
  such children normally re-run a script's top level as ``__mp_main__``, so a script without
  an ``if __name__ == "__main__"`` guard would start a scheduler in every worker. Workers do
  not need it: cloudpickle sends ``__main__`` functions and classes by value.
* **Stops the helpers** that nbsched started when the last pool using them shuts down
  (:func:`release`). The resource tracker ignores SIGTERM: left running, ipykernel's graceful
  shutdown waits for it until jupyter_client SIGTERMs the kernel 2.5 s later. Stopping is
  bounded: multiprocessing's own ``_stop()`` waits for the helper without a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing import forkserver, resource_tracker, spawn
from typing import Any

from . import _worker

__all__ = ["Released", "acquire", "release", "launching", "warm_up", "worker_parent", "sigint_blocked"]

_HAVE_SIGMASK = hasattr(signal, "pthread_sigmask")

#: guards everything below, and is held while a process is launched: a pool's release()
#: cannot stop a helper that another pool's launch is about to start or use
_lock = threading.Lock()
#: the pools that use the helpers (the last one to release them stops them)
_users: set[object] = set()
#: helpers nbsched launched ("forkserver", "resource_tracker"); only these are stopped
_started: set[str] = set()
_launching = threading.local()


class Released(Exception):
    """The pool already released the helpers (it is shutting down): launch nothing."""


def acquire(user: object) -> None:
    """Register ``user`` (a pool) as using the helpers."""
    with _lock:
        _users.add(user)


def release(user: object, deadline: float) -> None:
    """Unregister ``user``; the last user stops the helpers nbsched started. Bounded by
    ``deadline`` (monotonic): a helper that cannot be stopped in time is left to exit on its
    own, which it does once no process holds its "alive" pipe."""
    if not _lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        # A launch is stuck: this pool stops using the helpers (set.discard is atomic), and
        # they are left to exit on their own.
        _users.discard(user)
        return
    try:
        _users.discard(user)
        if _users:
            return
        started = set(_started)
        _started.clear()
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
    finally:
        _lock.release()


@contextlib.contextmanager
def launching(user: object, marker: str) -> Iterator[None]:
    """Around starting a process through multiprocessing: marked, with SIGINT blocked and
    without the main module; helpers started meanwhile are recorded as nbsched's.

    :raises Released: if ``user`` released the helpers (nothing is launched then)
    """
    with _lock:
        if user not in _users:
            raise Released
        before = _helper_pids()
        try:
            with _marker_env(marker):
                # First, outside our block: the resource tracker's own launch blocks SIGINT
                # around its spawn and then *unblocks* it in the calling thread. Inside the
                # block below it is then already running, and left alone.
                resource_tracker.ensure_running()
                with sigint_blocked(), _without_main_module():
                    yield
        finally:
            for name, pid in _helper_pids().items():
                if pid is not None and pid != before[name]:
                    _started.add(name)


def warm_up(user: object, ctx: Any, marker: str) -> None:
    """Start the helpers ahead of the first job (the forkserver with ``_worker`` preloaded).

    :raises Released: as :func:`launching`
    """
    with launching(user, marker):
        if ctx.get_start_method() != "forkserver":
            return
        server = forkserver._forkserver
        preload = list(getattr(server, "_preload_modules", None) or ["__main__"])
        if _worker.__name__ not in preload:
            # Workers forked from the server start with the worker module (and cloudpickle)
            # imported: about 6 ms instead of 29 ms per worker.
            ctx.set_forkserver_preload([*preload, _worker.__name__])
        forkserver.ensure_running()


def worker_parent(ctx: Any) -> int:
    """The pid the parent of a worker launched now will have: the forkserver's (started if
    it is not running) or ours. Call it inside :func:`launching`."""
    if ctx.get_start_method() != "forkserver":
        return os.getpid()
    forkserver.ensure_running()
    return getattr(forkserver._forkserver, "_forkserver_pid", None) or 0


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in the calling thread, for launching a process that must not die of the
    kernel's group SIGINT while it starts (see the module docstring)."""
    if not _HAVE_SIGMASK:  # pragma: no cover - Windows: no process groups, no group SIGINT
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# -- internals -------------------------------------------------------------------------------


def _helper_pids() -> dict[str, int | None]:
    return {
        "forkserver": getattr(forkserver._forkserver, "_forkserver_pid", None),
        "resource_tracker": getattr(resource_tracker._resource_tracker, "_pid", None),
    }


@contextlib.contextmanager
def _marker_env(marker: str) -> Iterator[None]:
    before = os.environ.get(_worker.MARKER_ENV)
    os.putenv(_worker.MARKER_ENV, marker)
    try:
        yield
    finally:
        if before is None:
            os.unsetenv(_worker.MARKER_ENV)
        else:
            os.putenv(_worker.MARKER_ENV, before)


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """While this thread launches, leave the main module out of the preparation data. The
    filter is installed once and does nothing for any other thread or at any other time."""
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
    # A child forked from this process neither owns the helpers nor may inherit a lock held
    # by a thread that does not exist in it.
    global _lock
    _lock = threading.Lock()
    _users.clear()
    _started.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
