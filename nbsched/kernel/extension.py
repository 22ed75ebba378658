"""Loading and unloading nbsched in a kernel (``%load_ext`` / ``%unload_ext nbsched``).

:func:`load`

1. reads the settings (:class:`~nbsched.kernel.config.NbschedConfig`, registered in
   ``shell.configurables`` so ``%config NbschedConfig`` works);
2. works out which notebook this kernel belongs to (:func:`detect_owner`);
3. builds the scheduler on the configured store, with a *resolver* that binds notebook
   functions and cell jobs to this kernel's namespace (``cells``), and starts it;
4. routes job output away from cells (``output``);
5. registers the ``%schedule`` magics (``magics``) and the cell hooks (``hooks``);
6. stops the scheduler on kernel shutdown, restart, ``exit()`` and SIGTERM (``hooks``).

What it set up is kept in ``state`` for the magics to find. Loading again in the same shell
does nothing; ``%reload_ext nbsched`` runs :func:`unload` (which shuts the scheduler down
cleanly) and then :func:`load`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.display import display

from ..display import HelpText
from ..errors import NbschedError
from . import hooks, output, state
from .cells import CellResolver
from .config import NbschedConfig
from .magics import ScheduleMagics

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["load", "unload", "detect_owner", "notebook_path", "unknown_notebook_notice"]

log = logging.getLogger("nbsched")


def notebook_path(shell: InteractiveShell) -> str | None:
    """The notebook this kernel runs, as the front end names it; ``None`` when it says not.

    In order: ``__session__`` (ipykernel copies ``JPY_SESSION_NAME``, which jupyter_server
    sets to the notebook's path, into the namespace), ``JPY_SESSION_NAME`` itself, then VS
    Code's ``__vsc_ipynb_file__``.
    """
    candidates = [
        shell.user_ns.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
        shell.user_ns.get("__vsc_ipynb_file__"),
    ]
    for value in candidates:
        if isinstance(value, str) and value.strip():
            value = value.strip()
            return os.path.normpath(value) if os.path.isabs(value) else value
    return None


def detect_owner(shell: InteractiveShell) -> str:
    """The notebook this kernel runs (:func:`notebook_path`), else ``kernel-<id>`` from the
    kernel's connection file, and, outside a kernel, ``ipython-<pid>``: names that last only
    as long as this kernel. ``NbschedConfig.owner`` overrides all of this.
    """
    path = notebook_path(shell)
    if path is not None:
        return path
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        try:
            # ipykernel only where there is a kernel: plain IPython has no connection file
            from ipykernel.connect import get_connection_file

            stem = Path(get_connection_file()).stem  # kernel-<id>
            if stem:
                return stem
        except Exception:  # not started through a connection file (in-process kernels)
            pass
        ident = getattr(kernel, "ident", None)
        if ident:
            return f"kernel-{ident}"
    return f"ipython-{os.getpid()}"


def unknown_notebook_notice(owner: str) -> str:
    """What a kernel says once at load when the front end does not name its notebook."""
    return (
        f"nbsched: the front end does not say which notebook this is, so jobs made here belong "
        f"to this kernel only ({owner}) and a new kernel will not run them; to keep them, run "
        '%config NbschedConfig.owner = "name" then %reload_ext nbsched'
    )


def load(shell: InteractiveShell, **overrides: Any) -> None:
    """Start this kernel's scheduler and register the magics (``%load_ext nbsched``).

    Loading into a shell that already has it does nothing.

    :param shell: the running IPython shell
    :param overrides: extra keyword arguments for the ``Scheduler`` (tests pass a fake
        ``clock=``)
    :raises UsageError: the scheduler cannot be built (a bad store URL, say)
    """
    with state.LOCK:
        previous = state.peek()
        if previous is not None:
            if previous.shell is shell:
                return
            unload(previous.shell)  # a different shell (only happens in tests)

        config = NbschedConfig(parent=shell)
        owner = config.owner.strip()
        if not owner:
            owner = detect_owner(shell)
            if notebook_path(shell) is None:
                display(HelpText(unknown_notebook_notice(owner)))  # type: ignore[no-untyped-call]
        resolver = CellResolver(shell)
        try:
            scheduler = config.build_scheduler(owner=owner, resolver=resolver, **overrides)
        except NbschedError as exc:
            raise UsageError(f"nbsched could not start: {exc}") from exc
        loaded = state.Loaded(
            shell=shell, config=config, scheduler=scheduler, owner=owner, resolver=resolver
        )
        try:
            _setup(loaded)
        except BaseException:
            _teardown(loaded)
            raise
        state.swap(loaded)


def _setup(loaded: state.Loaded) -> None:
    shell = loaded.shell

    # %config NbschedConfig.max_workers = 8
    cast("list[Any]", shell.configurables).append(loaded.config)
    loaded.undo.append(lambda: _discard(shell.configurables, loaded.config))

    if loaded.config.autostart:
        loaded.scheduler.start()  # puts the capture's routing proxies on sys.stdout/stderr

    output.install(shell)
    loaded.undo.append(lambda: output.uninstall(shell))

    # Magics stay registered after unload: without a scheduler they raise NOT_LOADED.
    # (Magics add themselves to shell.configurables: %config ScheduleMagics.table_limit.)
    magics = ScheduleMagics(shell=shell)
    shell.register_magics(magics)
    loaded.undo.append(lambda: _discard(shell.configurables, magics))

    hooks.install_cell_hooks(loaded)
    hooks.install_shutdown_hooks(loaded)


def unload(shell: InteractiveShell) -> None:
    """Stop the scheduler and remove the hooks (``%unload_ext nbsched``); magics stay
    registered but say that nbsched is not loaded."""
    with state.LOCK:
        loaded = state.peek()
        if loaded is None or loaded.shell is not shell:
            return
        state.swap(None)
        _teardown(loaded)


def _teardown(loaded: state.Loaded) -> None:
    loaded.stop()
    for undo in reversed(loaded.undo):
        try:
            undo()
        except Exception:
            log.warning("nbsched: unload step failed", exc_info=True)
    loaded.undo.clear()


def _discard(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)
