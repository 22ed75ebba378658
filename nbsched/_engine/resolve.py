"""Targets: what ``add_job`` accepts as a job's target, and how a stored job finds its callable
again.

A target is stored as a reference (``"package.module:function"``, ``"__main__:name"``, a
cell's source); the callable behind it is found when the job is added or read from the store.
A job whose callable cannot be found right now (a notebook function not defined yet in this
kernel) is *unbound*: kept, listed, not run, until the resolver finds it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import InvalidArgumentError, NbschedError, TargetLookupError
from ..jobs import CellTarget, Job, TargetKind
from ..targets import callable_to_ref, is_importable_ref, ref_to_callable

__all__ = ["Resolver", "Targets", "unbound_reason"]

log = logging.getLogger("nbsched")

#: turns a job whose target is not importable into its callable (``None``: not now)
Resolver = Callable[[Job], "Callable[..., Any] | None"]


class Targets:
    """Target handling of one scheduler: checking what ``add_job`` was given, and resolving
    stored jobs.

    :param resolver: finds the callables of ``"__main__:name"`` and cell jobs (the kernel
        extension's looks in the notebook's namespace); without one, cells run in a namespace
        of their own and ``__main__`` names are looked up in ``sys.modules["__main__"]``
    :param shared_store: the store is seen by other processes, so a callable must be stored
        by a name it can be imported by again
    """

    def __init__(self, resolver: Resolver | None, shared_store: bool) -> None:
        self._resolver = resolver
        self._shared = shared_store
        self._cell_ns: dict[str, Any] = {"__name__": "__nbsched_cells__"}

    def target(
        self, target: Callable[..., Any] | str | CellTarget
    ) -> tuple[TargetKind, str, Callable[..., Any] | None]:
        """(kind, stored reference, callable if already known) of an ``add_job`` target."""
        if isinstance(target, CellTarget):
            try:
                compile(target.source, "<nbsched cell>", "exec")
            except SyntaxError as exc:
                raise InvalidArgumentError(
                    f"The cell has a syntax error (line {exc.lineno}): {exc.msg}"
                ) from None
            return "cell", target.source, None
        if isinstance(target, str):
            if target.endswith(".ipynb"):  # a notebook job: stored as an absolute path
                path = os.path.abspath(os.path.expanduser(target))
                if not os.path.isfile(path):
                    raise TargetLookupError(f"No notebook at {path!r}")
                return "notebook", path, None
            if is_importable_ref(target):
                return "callable", target, ref_to_callable(target)
            if target.startswith("__main__:") and target.partition(":")[2]:
                return "callable", target, None
            raise InvalidArgumentError(
                f"Invalid target {target!r}: expected a callable, 'package.module:function', "
                "'__main__:name' or a path ending in .ipynb"
            )
        if callable(target):
            try:
                ref = callable_to_ref(target)
            except TargetLookupError:
                if self._shared:
                    raise
                # memory-only store: nothing to restore later, any callable will do
                ref = f"{getattr(target, '__module__', '__main__')}:{getattr(target, '__qualname__', repr(target))}"
            return "callable", ref, target
        raise InvalidArgumentError(
            f"target must be a callable, a 'module:function' string or a CellTarget, "
            f"got {type(target).__name__}"
        )

    def resolve(self, job: Job) -> Callable[..., Any] | None:
        """The callable of ``job``, or ``None`` if it cannot be found right now."""
        try:
            if job.kind == "callable" and is_importable_ref(job.target):
                return ref_to_callable(job.target)
            if self._resolver is not None:
                return self._resolver(job)
            if job.kind == "cell":
                code = compile(job.target, f"<nbsched cell {job.name}>", "exec")
                namespace = self._cell_ns
                return lambda: exec(code, namespace)
            if job.kind == "callable":
                func = getattr(sys.modules.get("__main__"), job.target.partition(":")[2], None)
                return func if callable(func) else None
        except (NbschedError, SyntaxError, ImportError) as exc:
            log.info("nbsched: job %r is unbound: %s", job.name, exc)
        except Exception:
            log.exception("nbsched: resolving job %r failed", job.name)
        return None


def unbound_reason(job: Job) -> str:
    if job.kind == "cell":
        return f"Job {job.name!r} is unbound: its cell code cannot run in this process"
    name = job.target.partition(":")[2]
    return (
        f"Job {job.name!r} is unbound: {name!r} is not defined here yet; "
        "run the cell that defines it"
    )
