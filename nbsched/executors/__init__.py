"""Executors: where runs happen.

* :class:`~nbsched.executors.thread.ThreadJobExecutor` -- threads in this process (default);
* ``ProcessJobExecutor`` (``nbsched.executors.process``) -- worker processes that never
  outlive this one; imported lazily because it pulls in multiprocessing.
* ``NotebookJobExecutor`` (``nbsched.executors.notebook``) -- whole notebooks, each in a
  kernel of its own (nbclient, imported lazily).
* ``Reaper`` -- the process that kills registered process groups once this process is gone
  (the process executor's workers, notebook kernels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .thread import ThreadJobExecutor

if TYPE_CHECKING:
    from ._reaper import Reaper
    from .notebook import NotebookJobExecutor
    from .process import ProcessJobExecutor

__all__ = ["ThreadJobExecutor", "ProcessJobExecutor", "NotebookJobExecutor", "Reaper"]


def __getattr__(name: str) -> Any:
    if name == "ProcessJobExecutor":
        from .process import ProcessJobExecutor

        return ProcessJobExecutor
    if name == "NotebookJobExecutor":
        from .notebook import NotebookJobExecutor

        return NotebookJobExecutor
    if name == "Reaper":
        from ._reaper import Reaper

        return Reaper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
