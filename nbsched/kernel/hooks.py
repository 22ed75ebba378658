"""The hooks nbsched puts into IPython and ipykernel.

* Cell events: ``pre_run_cell`` remembers the front-end's cell id (for ``%%schedule``),
  ``post_run_cell`` binds jobs whose function was just defined again.
* Kernel shutdown: a wrapper around ``Kernel.do_shutdown`` (:func:`install_kernel_hooks`),
  the earliest hook of a graceful shutdown *and* of a restart, run on the kernel's control
  thread before ipykernel's own sweep of its children (``_at_shutdown``). It runs the
  callbacks registered with ``nbsched._exits.on_exit``, which also covers ``exit()`` in a cell
  (``do_shutdown`` is skipped), interpreter exit and SIGTERM/SIGHUP. IPython events and
  ``unload_ipython_extension`` never fire when a kernel dies, so they cannot do this.

Every ``install_*`` function appends what undoes it to ``state.undo``.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from .. import _exits

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo

    from .state import Loaded

__all__ = ["install_cell_hooks", "install_kernel_hooks", "install_shutdown_hooks"]

log = logging.getLogger("nbsched")

_WRAPPED_MARK = "_nbsched_exit_hook"


def install_kernel_hooks(kernel: object) -> None:
    """Idempotently wrap ``kernel.do_shutdown`` so that the exit callbacks
    (``nbsched._exits.on_exit``) run first.

    ``do_shutdown`` runs on the control thread when a ``shutdown_request`` arrives (shutdown or
    restart), before ipykernel SIGTERMs the children in its process group; cleaning up there
    keeps the graceful shutdown well inside jupyter_client's 2.5 s grace.

    :param kernel: an ipykernel ``Kernel`` (anything with a ``do_shutdown(restart)`` method)
    """
    original = getattr(kernel, "do_shutdown", None)
    if original is None or getattr(original, _WRAPPED_MARK, False):
        return

    @functools.wraps(original)
    def do_shutdown(restart: bool, *args: Any, **kwargs: Any) -> Any:
        _exits.run_exit_callbacks("kernel restart" if restart else "kernel shutdown")
        # Sync or async (ipykernel accepts both): hand back whatever the original returns.
        return original(restart, *args, **kwargs)

    setattr(do_shutdown, _WRAPPED_MARK, True)
    kernel.do_shutdown = do_shutdown  # type: ignore[attr-defined]


def install_shutdown_hooks(state: Loaded) -> None:
    """Stop the scheduler on kernel shutdown or restart, on ``exit()``, at interpreter exit
    and on SIGTERM/SIGHUP. The exit callbacks run once each, newest first, within a bounded
    time; registered after ``scheduler.start()``, this one (a full ``shutdown`` that records
    runs in flight as ``cancelled``) runs before the scheduler's own last-resort one."""
    kernel = getattr(state.shell, "kernel", None)
    if kernel is not None:
        install_kernel_hooks(kernel)
    state.undo.append(_exits.on_exit(state.stop))


def install_cell_hooks(state: Loaded) -> None:
    """``pre_run_cell``: remember the cell id; ``post_run_cell``: bind unbound jobs."""
    shell = state.shell

    def pre_run_cell(info: ExecutionInfo) -> None:
        state.cell_id = getattr(info, "cell_id", None) or None
        state.cell_source = getattr(info, "raw_cell", None) or ""
        state.cell_calls = 0

    def post_run_cell(result: object) -> None:
        state.cell_source = ""
        if state.stopped:
            return
        try:
            state.scheduler.bind_unbound()
        except Exception:  # never break the user's cell flow
            log.warning("nbsched: binding unbound jobs failed", exc_info=True)

    for event, callback in (("pre_run_cell", pre_run_cell), ("post_run_cell", post_run_cell)):
        shell.events.register(event, callback)
        state.undo.append(functools.partial(_unregister, shell.events, event, callback))


def _unregister(events: Any, event: str, callback: Any) -> None:
    try:
        events.unregister(event, callback)
    except ValueError:  # already gone
        pass
