"""What ``%load_ext nbsched`` set up in this kernel, and the registry that holds it.

One kernel runs one scheduler. :func:`current` and :func:`loaded` are how the magics (and
users: ``nbsched.kernel.current().get_runs()``) reach it; both raise a one-line
``UsageError`` when nothing is loaded. The loader (``extension``) is the only writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..scheduler import Scheduler
    from .cells import CellResolver
    from .config import NbschedConfig

__all__ = ["Loaded", "NOT_LOADED", "SHUTDOWN_TIMEOUT", "current", "loaded", "peek", "swap", "LOCK"]

log = logging.getLogger("nbsched")

NOT_LOADED = "nbsched is not loaded in this kernel; run %load_ext nbsched"

#: seconds the scheduler gets to stop at kernel shutdown (jupyter_client SIGTERMs the kernel
#: 2.5 s after a shutdown request, so this must stay well below that)
SHUTDOWN_TIMEOUT = 1.0


@dataclass(eq=False)
class Loaded:
    """Everything the loader set up in one shell, so that unloading can take it down again.

    :param shell: the IPython shell
    :param config: the settings the scheduler was built from
    :param scheduler: this kernel's scheduler
    :param owner: the notebook this kernel's jobs belong to
    :param resolver: binds notebook functions and cell jobs to the shell's namespace
    """

    shell: InteractiveShell
    config: NbschedConfig
    scheduler: Scheduler
    owner: str
    resolver: CellResolver
    #: the ``cellId`` of the cell being run (from ``pre_run_cell``), for ``%%schedule``
    cell_id: str | None = None
    #: the source of the cell being run, and how many ``%schedule`` lines of it have run
    cell_source: str = ""
    cell_calls: int = 0
    #: job name -> the cell id of the cell that made it (to refuse silent replacements)
    made_by: dict[str, str] = field(default_factory=dict)
    #: what to call, newest first, to take everything down again
    undo: list[Callable[[], None]] = field(default_factory=list)
    stopped: bool = False

    def stop(self) -> None:
        """Shut the scheduler down (idempotent, never raises, bounded by
        :data:`SHUTDOWN_TIMEOUT`)."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self.scheduler.shutdown(wait=True, timeout=SHUTDOWN_TIMEOUT)
        except Exception:  # at shutdown there is nobody to tell but the log
            log.exception("nbsched: error while shutting the scheduler down")


#: held while loading or unloading (``%reload_ext`` may race a shutdown on the control thread)
LOCK = threading.RLock()
_loaded: Loaded | None = None


def peek() -> Loaded | None:
    """What is loaded, or ``None``."""
    return _loaded


def swap(new: Loaded | None) -> Loaded | None:
    """Make ``new`` the loaded state; returns the previous one. Call with :data:`LOCK` held."""
    global _loaded
    old, _loaded = _loaded, new
    return old


def loaded() -> Loaded:
    """What the loader set up (scheduler, owner, config).

    :raises UsageError: the extension is not loaded
    """
    state = _loaded
    if state is None:
        raise UsageError(NOT_LOADED)
    return state


def current() -> Scheduler:
    """The scheduler of this kernel.

    :raises UsageError: the extension is not loaded
    """
    return loaded().scheduler
