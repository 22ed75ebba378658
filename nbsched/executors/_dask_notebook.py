"""Notebook runs on a Dask worker: what travels to the worker, and the run there.

The client side (:class:`~nbsched.executors.dask.DaskJobExecutor`) decides where the executed
notebook goes, as the local notebook executor would, and sends :func:`pack_notebook`'s
bytes. On the worker, the run's child process (see :mod:`._dask_remote`) hands them to
:func:`run_in_child`, which is :func:`nbsched.runner.run_notebook` -- the same runner, with
the same parameters injection, output notebook, marks, timeout and kernel killing as local
runs -- plus two things a child process needs:

* the end of its stdin (the worker closes it to stop the run: ``cancel_run`` or the
  scheduler's timeout; or the worker died) sets the run's cancel event, so the runner kills
  the kernel's process group and saves the notebook marked before the child exits;
* the text the cells print is all that reaches the child's stdout (the run's output): the
  kernel and nbclient inherit a ``/dev/null`` stdout and stderr, so their own chatter
  (kernel banners, warnings) stays out of ``Run.output``, as it does locally.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["pack_notebook", "run_in_child"]


def pack_notebook(
    path: str,
    *,
    parameters: Mapping[str, Any] | None,
    output_path: Path,
    kernel_name: str | None,
    timeout: float | None,
) -> bytes:
    """A notebook run's settings as bytes for the worker (plain values only)."""
    spec = {
        "path": path,
        "parameters": dict(parameters) if parameters else None,
        "output_path": str(output_path),
        "kernel_name": kernel_name,
        "timeout": timeout,
    }
    return pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)


def run_in_child(stdin: IO[bytes]) -> tuple[Any, ...]:
    """Run the notebook :func:`pack_notebook` described, in this (child) process: ``stdin``
    brings its length (8 bytes, big-endian) and the bytes, then stays open until the run is
    to stop.

    :returns: ``(status, started_ts, finished_ts, error)``, ``status`` a ``RunStatus`` value
    """
    size = int.from_bytes(stdin.read(8), "big")
    spec = pickle.loads(stdin.read(size))
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    cancel = threading.Event()

    def watch_stdin() -> None:
        stdin.read()  # returns at EOF: the worker closed it, or is gone
        cancel.set()

    threading.Thread(target=watch_stdin, name="nbsched-dask-stop", daemon=True).start()
    started: list[float] = []

    def on_start() -> None:
        started.append(time.time())

    def on_output(text: str) -> None:
        out.write(text)

    try:
        from ..runner import run_notebook

        result = run_notebook(
            spec["path"],
            parameters=spec["parameters"],
            output_path=spec["output_path"],
            kernel_name=spec["kernel_name"],
            timeout=spec["timeout"],
            on_output=on_output,
            cancel=cancel,
            on_start=on_start,
        )
        status, error = result.status.value, result.error
    except Exception as exc:  # no notebook there, a bad parameter: the run failed
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        out.flush()
    return status, (started[0] if started else None), time.time(), error
