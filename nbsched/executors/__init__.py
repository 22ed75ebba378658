"""Executors: where runs happen.

* :class:`~nbsched.executors.thread.ThreadJobExecutor` -- threads in this process (default);
* ``ProcessJobExecutor`` (``nbsched.executors.process``) -- worker processes that never
  outlive this one; imported lazily because it pulls in multiprocessing.
"""

from __future__ import annotations

from typing import Any

from .thread import ThreadJobExecutor

__all__ = ["ThreadJobExecutor", "ProcessJobExecutor"]


def __getattr__(name: str) -> Any:
    if name == "ProcessJobExecutor":
        from .process import ProcessJobExecutor

        return ProcessJobExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
