"""Jobs made of this kernel's code: cell jobs and notebook functions.

* :func:`cell_job_name` and :func:`compile_cell`: what ``%%schedule`` stores for a cell;
* :class:`CellResolver`: binds stored jobs back to this kernel's namespace (the scheduler's
  ``resolver``);
* :func:`resolve_target`: what ``%schedule add TARGET`` means -- a function of the
  namespace, an importable function or a notebook.
"""

from __future__ import annotations

import linecache
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..errors import did_you_mean
from ..jobs import default_job_name
from ..targets import callable_to_ref, ref_to_callable

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..jobs import Job

__all__ = ["CellResolver", "cell_job_name", "compile_cell", "resolve_target"]

log = logging.getLogger("nbsched")


def cell_job_name(owner: str, cell_id: str | None, source: str) -> str:
    """Default name of a ``%%schedule`` job: stable for the same front-end cell (its id), else
    for the same source; the same rule as ``Scheduler.add_job(CellTarget(source))``
    (:func:`nbsched.jobs.default_job_name`)."""
    return default_job_name("cell", source, owner=owner, cell_id=cell_id)


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


def resolve_target(text: str, user_ns: Mapping[str, Any]) -> tuple[str, str, str]:
    """What ``%schedule add TARGET`` schedules: ``(target for add_job, default job name,
    kind)``.

    ``TARGET`` is a path ending in ``.ipynb``, ``"package.module:function"``, or a (dotted)
    name in the namespace. A namespace function that can be imported again (it comes from a
    module) is stored by reference, so it binds after a restart without re-running a cell;
    one defined in the notebook is stored as ``"__main__:name"``.

    :raises UsageError: nothing usable by that name
    """
    text = text.strip()
    if text.lower().endswith(".ipynb"):
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise UsageError(f"No notebook at {str(path)!r}")
        ref = str(path.resolve())
        return ref, default_job_name("notebook", ref), "notebook"
    if ":" in text:
        return text, default_job_name("callable", text), "callable"
    parts = text.split(".")
    if not all(p.isidentifier() for p in parts):
        raise UsageError(
            f"add: {text!r} is not a function name, 'package.module:function' or a .ipynb path"
        )
    if parts[0] not in user_ns:
        names = [k for k, v in user_ns.items() if callable(v) and not k.startswith("_")]
        hint = did_you_mean(parts[0], names)
        raise UsageError(
            f"add: nothing named {parts[0]!r} in this notebook{hint}; define the function "
            "first, or give 'package.module:function'"
        )
    obj: Any = user_ns[parts[0]]
    for part in parts[1:]:
        if not hasattr(obj, part):
            raise UsageError(f"add: {'.'.join(parts[:-1])!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"add: {text!r} is a {type(obj).__name__}, not a function")
    importable = _importable_ref(obj)
    if importable is not None:
        return importable, parts[-1], "callable"
    if len(parts) > 1:
        raise UsageError(
            f"add: {text!r} cannot be found again after a restart; schedule a top-level "
            "function of the notebook or of a module"
        )
    ref = f"__main__:{text}"
    return ref, default_job_name("callable", ref), "callable"


def _importable_ref(obj: Any) -> str | None:
    """``"module:qualname"`` if importing it gives back ``obj`` (so it binds after a restart
    without re-running a cell), else ``None``."""
    module = getattr(obj, "__module__", None)
    if not module or module == "__main__":
        return None
    try:
        ref = callable_to_ref(obj)
        return ref if ref_to_callable(ref) is obj else None
    except Exception:
        return None
