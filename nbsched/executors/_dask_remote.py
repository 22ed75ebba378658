"""The worker side of the Dask executor: each run is a child process of the Dask worker.

A Dask task runs on a worker *thread*, and a thread cannot be stopped: a run over its timeout
would keep the worker's slot busy forever. So the task (:func:`run_task`) starts the job's
body as a child process of the worker, in a session and process group of its own, and only
waits for it. Stopping a run (:func:`cancel_on_worker`, called through ``Client.run``, or the
run's own timeout) kills that whole group, grandchildren included, and the worker's thread
is free again at once. Dask workers are daemonic ``multiprocessing`` processes, which may not
start ``multiprocessing`` children; a plain ``subprocess`` is allowed.

The guarantees match the process executor's: the child gets ``PR_SET_PDEATHSIG`` (Linux), and
its group is registered with a :class:`~nbsched.executors.reaper.Reaper` of the worker, so
nothing a run starts outlives the worker however it dies. Whatever the body left running in
its group when it returns is killed with the group: a run's processes end with the run.

Notebook runs (:func:`run_task` with ``notebook=True``) take the same road: the child runs
:func:`nbsched.runner.run_notebook` (see :mod:`._dask_notebook`), whose kernel is then a
grandchild of the worker with the same guarantees (PDEATHSIG on the child, the child's own
reaper for what the kernel starts). A notebook run is stopped by closing the child's stdin,
which it watches: it kills the kernel and saves the executed notebook with its mark, and
only after :data:`NOTEBOOK_GRACE` is its group killed. (Not by a signal: a Python signal
handler in the child, whose main thread runs nbclient's event loop, made the kernel's
running cell end in a ``KeyboardInterrupt`` reply before it was killed, and the notebook
then read "failed" instead of "cancelled".)

Run as a program (``python -m nbsched.executors._dask_remote RESULT [--notebook]``) this
module is that child: it reads the pickled job from stdin, runs it, and writes how it ended
to ``RESULT``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from .payload import unpack
from .reaper import Reaper

__all__ = ["STARTED_TOPIC", "run_task", "cancel_on_worker"]

#: Dask event topic on which workers announce that a run's body has started
STARTED_TOPIC = "nbsched-run-started"
#: most output kept per run (its last bytes), as for process jobs
OUTPUT_LIMIT = 1 << 20
#: how long a killed run's group gets between SIGTERM and SIGKILL
KILL_GRACE = 0.5
#: ... a notebook run's child, to kill its kernel and save the executed notebook; also how
#: long past its own timeout (which the child enforces, marking the notebook) it may take
NOTEBOOK_GRACE = 5.0

_lock = threading.Lock()
_children: dict[str, subprocess.Popen[bytes]] = {}  # run id -> its child, in this worker
_notebooks: set[str] = set()  # run ids of those children that run notebooks
_stopped: dict[str, str] = {}  # run id -> the status it was stopped with
_reaper: Reaper | None = None


def run_task(
    payload: bytes, run_id: str, timeout: float | None, notebook: bool = False
) -> tuple[Any, ...]:
    """Run one job in a child process; the Dask task of every run.

    :param notebook: ``payload`` is a notebook run's pickled settings (see
        :mod:`._dask_notebook`), not a function job
    :returns: ``(status, output, error, started_ts, finished_ts)``; ``status`` is a
        ``RunStatus`` value
    """
    reaper = _get_reaper()
    fd, result_path = tempfile.mkstemp(prefix="nbsched-run-", suffix=".pickle")
    os.close(fd)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, result_path, *(["--notebook"] if notebook else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: one killpg reaches the whole tree
            preexec_fn=_child_setup,  # noqa: PLW1509 - only async-signal-safe calls in it
            close_fds=True,
        )
        with _lock:
            _children[run_id] = child
            if notebook:
                _notebooks.add(run_id)
        reaper.add(child.pid)
        _announce(run_id)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_read, args=(child, chunks), daemon=True)
        reader.start()
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            if notebook:  # stdin stays open: closing it stops the run (see _stop)
                child.stdin.write(len(payload).to_bytes(8, "big") + payload)
                child.stdin.flush()
            else:
                child.stdin.write(payload)
                child.stdin.close()
        try:  # (a notebook's child enforces the timeout itself, and marks the notebook)
            child.wait(timeout + NOTEBOOK_GRACE if notebook and timeout else timeout)
        except subprocess.TimeoutExpired:
            _stop(run_id, "timed_out")  # the worker stops it even if the client is gone
        child.wait()
        with contextlib.suppress(OSError):
            child.stdin.close()
        _kill_group(child.pid, signal.SIGKILL)  # whatever the body left behind
        reaper.remove(child.pid)
        reader.join(1.0)
        output = _tail(b"".join(chunks))
        with _lock:
            _children.pop(run_id, None)
            _notebooks.discard(run_id)
            stopped = _stopped.pop(run_id, None)
        return _outcome(child, result_path, output, stopped, timeout)
    finally:
        # (and the result the child was writing when it was killed, if it was)
        for path in (result_path, result_path + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _announce(run_id: str) -> None:
    """Tell the scheduler's client that the run has started (its ``RunStarted``)."""
    from distributed import get_worker

    with contextlib.suppress(ValueError):  # not in a worker (a test calling us directly)
        get_worker().log_event(STARTED_TOPIC, {"run_id": run_id, "ts": time.time()})


def cancel_on_worker(run_id: str, status: str) -> bool:
    """Stop run ``run_id`` if it runs in this worker; called through ``Client.run``."""
    return _stop(run_id, status)


def _stop(run_id: str, status: str) -> bool:
    with _lock:
        child = _children.get(run_id)
        if child is None or child.poll() is not None:
            return False
        _stopped[run_id] = status
        notebook = run_id in _notebooks
    if notebook:  # the child kills the kernel and saves the notebook, then exits
        with contextlib.suppress(OSError, ValueError):
            assert child.stdin is not None
            child.stdin.close()
    else:
        _kill_group(child.pid, signal.SIGTERM)
    grace = NOTEBOOK_GRACE if notebook else KILL_GRACE
    timer = threading.Timer(grace, _kill_group, (child.pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()
    return True


def _outcome(
    child: subprocess.Popen[bytes],
    result_path: str,
    output: str,
    stopped: str | None,
    timeout: float | None,
) -> tuple[Any, ...]:
    now = time.time()
    try:
        with open(result_path, "rb") as f:
            ok, started, finished, error = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        ok, started, finished, error = None, None, now, None
    if stopped is not None:
        why = (
            f"Stopped after its timeout of {timeout} s"
            if stopped == "timed_out"
            else "Cancelled while it ran"
        )
        return stopped, output, why, started, now
    if isinstance(ok, str):  # a notebook run: its status as run_notebook gave it
        return ok, output, error, started, finished
    if ok is None:  # the child died before it could say how the job ended
        code = child.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return "crashed", output, f"The run's process on the Dask worker {how}", started, now
    return ("succeeded" if ok else "failed"), output, error, started, finished


def _get_reaper() -> Reaper:
    global _reaper
    with _lock:
        if _reaper is None:
            _reaper = Reaper()
        reaper = _reaper
    reaper.ensure_running()
    return reaper


def _read(child: subprocess.Popen[bytes], chunks: list[bytes]) -> None:
    stream: Any = child.stdout  # a BufferedReader: read1 returns what is there, up to 64 KiB
    size = 0
    for block in iter(lambda: stream.read1(65536), b""):
        chunks.append(block)
        size += len(block)
        while size > 2 * OUTPUT_LIMIT and len(chunks) > 1:  # keep memory bounded
            size -= len(chunks.pop(0))


def _tail(data: bytes) -> str:
    if len(data) <= OUTPUT_LIMIT:
        return data.decode("utf-8", "replace")
    omitted = len(data) - OUTPUT_LIMIT
    text = data[-OUTPUT_LIMIT:].decode("utf-8", "replace")
    return f"[... {omitted} bytes of output omitted ...]\n{text}"


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, sig)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _child_setup() -> None:
    """In the child between fork and exec: die with the worker (Linux), ignore interrupts."""
    if sys.platform == "linux":
        _libc.prctl(1, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(result_path: str, notebook: bool) -> None:
    """The child: run the job read from stdin and write ``(ok, started, finished, error)``
    (``ok``: a status string for a notebook run)."""
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    started: float | None = None
    if notebook:
        from ._dask_notebook import run_in_child

        result: tuple[Any, ...] = run_in_child(sys.stdin.buffer)
        _write(result_path, result)
        return
    try:
        func, args, kwargs = unpack(sys.stdin.buffer.read())
        started = time.time()
        func(*args, **kwargs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report them
        tb = exc.__traceback__.tb_next if started is not None and exc.__traceback__ else None
        error = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
        result = (False, started, time.time(), error)
    else:
        result = (True, started, time.time(), None)
    _write(result_path, result)


def _write(result_path: str, result: tuple[Any, ...]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_path + ".tmp", "wb") as f:
        pickle.dump(result, f)
    os.replace(result_path + ".tmp", result_path)


if __name__ == "__main__":
    _main(sys.argv[1], "--notebook" in sys.argv[2:])
