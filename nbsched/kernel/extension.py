"""The IPython/ipykernel side of nbsched: loading, the per-kernel registry, hooks.

``%load_ext nbsched`` calls :func:`load`, which

1. reads the settings (:class:`~nbsched.config.NbschedConfig`, registered in
   ``shell.configurables`` so ``%config NbschedConfig`` works);
2. works out which notebook this kernel belongs to (:func:`detect_owner`);
3. builds the scheduler on the configured store, with a *resolver* that binds notebook
   functions and cell jobs to this kernel's namespace, and starts it;
4. registers the ``%schedule`` magics and two IPython event hooks (``pre_run_cell`` remembers
   the front-end's cell id for ``%%schedule``; ``post_run_cell`` binds jobs whose function was
   just defined again);
5. routes job output away from cells (``nbsched._output``);
6. stops the scheduler on kernel shutdown: a wrapper around ``Kernel.do_shutdown`` (the
   earliest hook, run on the control thread for shutdown *and* restart requests) and an
   ``atexit`` callback (``exit()`` in a cell skips ``do_shutdown``). IPython events and
   ``unload_ipython_extension`` never fire when a kernel dies (research/kernel-lifecycle.md).

Loading again in the same shell does nothing; ``%reload_ext nbsched`` runs :func:`unload`
(which shuts the scheduler down cleanly) and then :func:`load`.
"""

from __future__ import annotations

import hashlib
import linecache
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError

from ..errors import NbschedError
from .config import NbschedConfig

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, InteractiveShell

    from ..jobs import Job
    from ..scheduler import Scheduler

__all__ = [
    "load",
    "unload",
    "current",
    "loaded",
    "detect_owner",
    "cell_job_name",
    "compile_cell",
    "NOT_LOADED",
]

log = logging.getLogger("nbsched")

NOT_LOADED = "nbsched is not loaded in this kernel; run %load_ext nbsched"

#: seconds the scheduler gets to stop at kernel shutdown (jupyter_client SIGTERMs the kernel
#: 2.5 s after a shutdown request, so this must stay well below that)
SHUTDOWN_TIMEOUT = 1.0


# -- the registry -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Loaded:
    """Everything :func:`load` set up, so that :func:`unload` can take it down again."""

    shell: InteractiveShell
    config: NbschedConfig
    scheduler: Scheduler
    owner: str
    resolver: CellResolver
    #: the ``cellId`` of the cell being run (from ``pre_run_cell``), for ``%%schedule``
    cell_id: str | None = None
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


_lock = threading.RLock()
_state: _Loaded | None = None


def current() -> Scheduler:
    """The scheduler of this kernel.

    :raises UsageError: the extension is not loaded
    """
    state = _state
    if state is None:
        raise UsageError(NOT_LOADED)
    return state.scheduler


def loaded() -> _Loaded:
    """What :func:`load` set up (scheduler, owner, config).

    :raises UsageError: the extension is not loaded
    """
    state = _state
    if state is None:
        raise UsageError(NOT_LOADED)
    return state


# -- owner (which notebook the jobs belong to) ------------------------------------------------


def detect_owner(shell: InteractiveShell) -> str:
    """The notebook this kernel runs, as the front-end names it.

    In order: ``__session__`` (ipykernel copies ``JPY_SESSION_NAME``, which jupyter_server
    sets to the notebook's path, into the namespace), ``JPY_SESSION_NAME`` itself, VS Code's
    ``__vsc_ipynb_file__``, then ``kernel-<id>`` from the kernel's connection file (stable
    across restarts of the same kernel, which keep their connection file), and, outside a
    kernel, ``ipython-<pid>``. ``NbschedConfig.owner`` overrides all of this.
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
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        try:
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


# -- cell jobs --------------------------------------------------------------------------------


def cell_job_name(owner: str, cell_id: str | None, source: str) -> str:
    """Default name of a ``%%schedule`` job: stable for the same front-end cell (its id), else
    for the same source; the owner is mixed in so that two notebooks (or a duplicated
    notebook, whose cells keep their ids) never collide in a shared store."""
    key = f"id:{cell_id}" if cell_id else f"src:{source.strip()}"
    digest = hashlib.sha1(f"{owner}\0{key}".encode(), usedforsecurity=False).hexdigest()
    return f"cell-{digest[:8]}"


def compile_cell(source: str, name: str) -> CodeType:
    """Compile a cell job's source. Cell jobs are plain Python: IPython syntax (``%magic``,
    ``!cmd``) would need the shell, which must not run code off the main thread. The source
    is registered with ``linecache`` so tracebacks in ``Run.error`` show its lines.

    :raises SyntaxError: the cell does not compile
    """
    filename = f"<nbsched cell job {name}>"
    compiled = compile(source, filename, "exec", dont_inherit=True)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compiled


class CellResolver:
    """Binds a job to something this kernel can call (the scheduler's ``resolver``).

    * ``kind == "cell"``: a function that runs the compiled source with
      ``exec(code, shell.user_ns)`` -- in the worker thread, never through
      ``shell.run_cell`` (history, execution count and the displayhook assume the main
      thread);
    * ``"__main__:name"``: ``shell.user_ns[name]`` if it is callable, else ``None``: the job
      is *unbound* until the defining cell runs again (see the ``post_run_cell`` hook).

    May be called from any thread (the scheduler's loop, the main thread).
    """

    def __init__(self, shell: InteractiveShell) -> None:
        self._shell = shell
        self._lock = threading.Lock()
        self._code: dict[tuple[str, str], CodeType] = {}

    def __call__(self, job: Job) -> Callable[..., Any] | None:
        if job.kind == "cell":
            return self._cell(job)
        module, _, qualname = job.target.partition(":")
        if job.kind == "callable" and module == "__main__" and qualname:
            return self.lookup(qualname)
        if job.kind == "callable" and module and qualname:
            from ..targets import ref_to_callable

            try:
                return ref_to_callable(job.target)
            except Exception:
                return None
        return None

    def lookup(self, dotted: str) -> Callable[..., Any] | None:
        """``user_ns["a"].b.c`` for ``"a.b.c"`` if it exists and is callable, else ``None``."""
        head, *rest = dotted.split(".")
        obj = self._shell.user_ns.get(head)
        for part in rest:
            obj = getattr(obj, part, None)
        return obj if callable(obj) else None

    def _cell(self, job: Job) -> Callable[[], None] | None:
        key = (job.name, job.target)
        with self._lock:
            code = self._code.get(key)
            if code is None:
                try:
                    code = compile_cell(job.target, job.name)
                except SyntaxError:
                    log.warning("nbsched: cell job %r does not compile", job.name, exc_info=True)
                    return None
                self._code[key] = code
        user_ns = self._shell.user_ns

        def run_cell_job() -> None:
            exec(code, user_ns)

        run_cell_job.__qualname__ = run_cell_job.__name__ = f"cell job {job.name}"
        return run_cell_job


# -- load / unload ----------------------------------------------------------------------------


def load(shell: InteractiveShell, **overrides: Any) -> None:
    """Start this kernel's scheduler and register the magics (``%load_ext nbsched``).

    Loading into a shell that already has it does nothing.

    :param shell: the running IPython shell
    :param overrides: extra keyword arguments for the ``Scheduler`` (tests pass a fake
        ``clock=``)
    """
    global _state
    with _lock:
        if _state is not None:
            if _state.shell is shell:
                return
            unload(_state.shell)  # a different shell (only happens in tests)

        config = NbschedConfig(parent=shell)
        owner = config.owner.strip() or detect_owner(shell)
        resolver = CellResolver(shell)
        try:
            scheduler = config.build_scheduler(owner=owner, resolver=resolver, **overrides)
        except NbschedError as exc:
            raise UsageError(f"nbsched could not start: {exc}") from exc
        state = _Loaded(
            shell=shell, config=config, scheduler=scheduler, owner=owner, resolver=resolver
        )
        try:
            _setup(state)
        except BaseException:
            _teardown(state)
            raise
        _state = state


def _setup(state: _Loaded) -> None:
    shell = state.shell

    # %config NbschedConfig.max_workers = 8
    cast("list[Any]", shell.configurables).append(state.config)
    state.undo.append(lambda: _discard(shell.configurables, state.config))

    if state.config.autostart:
        state.scheduler.start()  # puts _capture's routing proxies on sys.stdout/stderr

    from . import output as _output

    _output.install(shell)
    state.undo.append(lambda: _output.uninstall(shell))

    from .magics import ScheduleMagics

    # Magics stay registered after unload: without a scheduler they raise NOT_LOADED.
    # (Magics add themselves to shell.configurables: %config ScheduleMagics.table_limit.)
    magics = ScheduleMagics(shell=shell)
    shell.register_magics(magics)
    state.undo.append(lambda: _discard(shell.configurables, magics))

    def pre_run_cell(info: ExecutionInfo) -> None:
        state.cell_id = getattr(info, "cell_id", None) or None

    def post_run_cell(result: object) -> None:
        if state.stopped:
            return
        try:
            state.scheduler.bind_unbound()
        except Exception:  # never break the user's cell flow
            log.warning("nbsched: binding unbound jobs failed", exc_info=True)

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    state.undo.append(lambda: _unregister(shell, "pre_run_cell", pre_run_cell))
    state.undo.append(lambda: _unregister(shell, "post_run_cell", post_run_cell))

    _install_shutdown_hooks(state)


def _install_shutdown_hooks(state: _Loaded) -> None:
    """Stop the scheduler on kernel shutdown/restart (``do_shutdown``, the earliest hook, on
    the control thread), on ``exit()`` and at interpreter exit (``atexit``), and on
    SIGTERM/SIGHUP -- all through ``nbsched._lifecycle``, which runs each callback once,
    newest first, within a bounded time. Registered after ``scheduler.start()``, so this
    callback (a full ``shutdown`` that records runs in flight as ``cancelled``) runs before the
    scheduler's own last-resort one."""
    from .. import _exits as _lifecycle

    kernel = getattr(state.shell, "kernel", None)
    if kernel is not None:
        _lifecycle.install_kernel_hooks(kernel)
    state.undo.append(_lifecycle.on_exit(state.stop))


def unload(shell: InteractiveShell) -> None:
    """Stop the scheduler and remove the hooks (``%unload_ext nbsched``); magics stay
    registered but say that nbsched is not loaded."""
    global _state
    with _lock:
        state = _state
        if state is None or state.shell is not shell:
            return
        _state = None
        _teardown(state)


def _teardown(state: _Loaded) -> None:
    state.stop()
    for undo in reversed(state.undo):
        try:
            undo()
        except Exception:
            log.warning("nbsched: unload step failed", exc_info=True)
    state.undo.clear()


def _discard(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)


def _unregister(shell: InteractiveShell, event: str, func: Callable[..., Any]) -> None:
    try:
        shell.events.unregister(event, func)
    except ValueError:
        pass
