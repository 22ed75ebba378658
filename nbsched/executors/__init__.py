"""Executors: where runs happen.

* :class:`~nbsched.executors.thread.ThreadJobExecutor` -- threads in this process (default);
* ``ProcessJobExecutor`` (``nbsched.executors.process``) -- worker processes that never
  outlive this one; imported lazily because it pulls in multiprocessing.
* ``NotebookJobExecutor`` (``nbsched.executors.notebook``) -- whole notebooks, each in a
  kernel of its own (nbclient, imported lazily).
* ``DaskJobExecutor`` (``nbsched.executors.dask``) -- a Dask cluster's workers.

:mod:`~nbsched.executors.reaper` is the process that kills registered process groups once this
process is gone, however it died: the process executor's workers, notebook kernels, and the
runs of a Dask worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .thread import ThreadJobExecutor

if TYPE_CHECKING:
    from .notebook import NotebookJobExecutor
    from .process import ProcessJobExecutor

__all__ = ["ThreadJobExecutor", "ProcessJobExecutor", "NotebookJobExecutor"]


def __getattr__(name: str) -> Any:
    if name == "ProcessJobExecutor":
        from .process import ProcessJobExecutor

        return ProcessJobExecutor
    if name == "NotebookJobExecutor":
        from .notebook import NotebookJobExecutor

        return NotebookJobExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
