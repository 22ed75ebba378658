"""The kernel of a notebook run never outlives the process that started it.

jupyter_client already starts every kernel in a session (and process group) of its own, so
interrupts aimed at our process group never reach it, and one ``killpg`` reaches the kernel
and everything it started. Two things are added:

* ``PR_SET_PDEATHSIG`` (Linux): the kernel gets SIGKILL as soon as the thread that started
  it ends -- the run's own thread, which outlives the run -- and so when our process dies,
  however it dies (SIGKILL included), with no Python code of ours running;
* the reaper (``nbsched.executors.reaper``, the one the process executor uses too): a tiny process in a
  session of its own that kills every registered group once our process is gone. It covers
  what PDEATHSIG does not: the kernel's own children (a ``sleep 600`` a cell started).

SIGINT is left alone: the kernel's own session keeps our interrupts away from it, and the
kernel needs SIGINT for its own interrupts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from ..executors.reaper import Reaper

__all__ = ["kill_group", "pdeathsig_preexec", "register", "unregister"]

log = logging.getLogger("nbsched")

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_reaper: Reaper | None = None
_groups = 0  # groups registered with _reaper


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up once, here: the function runs in the forked child before exec, where nothing
# that may take a lock (an import, a dlopen) is safe.
_prctl = _load_prctl()


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` for the kernel's ``Popen`` that arms PDEATHSIG, or ``None`` where
    that cannot be done (not Linux)."""
    prctl = _prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: follow it
            os._exit(1)

    return arm


def register(pgid: int) -> None:
    """Have the reaper kill group ``pgid`` should this process die before
    :func:`unregister`. The reaper runs while any run is in flight only: an idle process
    keeps no extra process around."""
    global _reaper, _groups
    with _lock:
        if _reaper is None:
            _reaper = Reaper()
        _reaper.ensure_running()
        _reaper.add(pgid)
        _groups += 1


def unregister(pgid: int) -> None:
    """Group ``pgid`` is dead (killed at the end of its run): forget it."""
    global _reaper, _groups
    with _lock:
        if _reaper is None:
            return
        _reaper.remove(pgid)
        _groups -= 1
        idle, _reaper = (_reaper, None) if _groups <= 0 else (None, _reaper)
    if idle is not None:
        idle.close()  # (it has nothing left to kill: it exits at once)


def kill_group(pgid: int) -> bool:
    """SIGKILL every process of group ``pgid``; ``False`` if it was already empty."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    except PermissionError:  # (the pgid was reused by someone else's process: not ours)
        log.warning("nbsched: not allowed to kill process group %d", pgid)
        return False
    return True
