"""The worker side of the Dask executor: each run is a process of its own on the worker.

A Dask task runs on a worker *thread*, and a thread cannot be stopped: a run over its timeout
would keep the worker's slot busy forever. So the task (:func:`run_task`) runs the job's body
in a process of its own, which leads a process group of its own, and only waits for it.
Stopping a run (:func:`cancel_on_worker`, called through ``Client.run``, or the run's own
timeout) kills that whole group, grandchildren included, and the worker's thread is free
again at once. Whatever the body left running in its group when it returns is killed with
the group: a run's processes end with the run. Dask workers are daemonic ``multiprocessing``
processes, which may not start ``multiprocessing`` children; plain subprocesses and forks
are allowed.

**Function runs** are forked by the worker thread's warm process (:mod:`._dask_warm`): a
Python started once per worker thread, on its first run, with this machinery imported, so a
run costs a ``fork`` instead of an interpreter start (about 200 ms). Each run is still a fresh
process -- nothing one run changes reaches the next -- with its output captured at the
file-descriptor level (the last :data:`OUTPUT_LIMIT` bytes).

**Notebook runs** (:func:`run_task` with ``notebook=True``) keep a child process started for
the run (``python -m nbsched.executors._dask_remote RESULT --notebook``): the notebook's kernel
start dwarfs an interpreter start. The child runs :func:`nbsched.runner.run_notebook` (see
:mod:`._dask_notebook`), whose kernel is then a grandchild of the worker with the same
guarantees (PDEATHSIG on the child, the child's own reaper for what the kernel starts). A
notebook run is stopped by closing the child's stdin, which it watches: it kills the kernel
and saves the executed notebook with its mark, and only after :data:`NOTEBOOK_GRACE` is its
group killed. (Not by a signal: a Python signal handler in the child, whose main thread runs
nbclient's event loop, made the kernel's running cell end in a ``KeyboardInterrupt`` reply
before it was killed, and the notebook then read "failed" instead of "cancelled".)

The guarantees match the process executor's: run processes (and warm processes) get
``PR_SET_PDEATHSIG`` (Linux), and their groups are registered with a
:class:`~nbsched.executors.reaper.Reaper` of the worker, so nothing a run starts outlives the
worker however it dies.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from . import _dask_warm
from ._dask_warm import NotSent, WarmLost, WarmProcess, read_result, unnamed_file
from ._pool import kill_group
from ._worker import read_output
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


class _Active:
    """A run in flight in this worker."""

    __slots__ = ("pid", "stdin", "stopped", "done")

    def __init__(self, pid: int | None = None, stdin: IO[bytes] | None = None) -> None:
        #: its process (and group) id; ``None`` while a warm process is forking it
        self.pid = pid
        #: a notebook run's child's stdin (closing it stops the run)
        self.stdin = stdin
        #: the status it was stopped with (``"cancelled"``, ``"timed_out"``)
        self.stopped: str | None = None
        #: its process has ended: stop it no more (its group may be gone, and its number
        #: someone else's)
        self.done = False


_lock = threading.Lock()
_active: dict[str, _Active] = {}  # run id -> the run, in this worker
_reaper: Reaper | None = None


def run_task(
    payload: bytes, run_id: str, timeout: float | None, notebook: bool = False
) -> tuple[Any, ...]:
    """Run one job in a process of its own; the Dask task of every run.

    :param notebook: ``payload`` is a notebook run's pickled settings (see
        :mod:`._dask_notebook`), not a function job
    :returns: ``(status, output, error, started_ts, finished_ts)``; ``status`` is a
        ``RunStatus`` value
    """
    if notebook:
        return _run_notebook(payload, run_id, timeout)
    return _run_function(payload, run_id, timeout)


def _run_function(payload: bytes, run_id: str, timeout: float | None) -> tuple[Any, ...]:
    """A function run, forked by this thread's warm process (see :mod:`._dask_warm`)."""
    reaper = _get_reaper()
    active = _Active()
    with _lock:
        _active[run_id] = active
    out_fd = unnamed_file(append=True)
    result_fd = unnamed_file()
    try:
        try:
            warm, pid = _fork_run(reaper, payload, out_fd, result_fd)
        except (WarmLost, OSError) as exc:
            error = f"Could not start the run's process on the Dask worker: {exc}"
            return "crashed", read_output(out_fd), error, None, time.time()
        reaper.add(pid)
        with _lock:
            active.pid = pid
            stopped_early = active.stopped is not None
        if stopped_early:  # a stop came while it was being forked
            _signal_stop(active, pid)
        _announce(run_id)
        lost: str | None = None
        try:
            code = warm.wait(timeout)
            if code is None:
                _stop(run_id, "timed_out")  # the worker stops it even if the client is gone
                code = warm.wait(None)
        except WarmLost as exc:  # (the run died with it: PDEATHSIG)
            _dask_warm.drop(warm)
            kill_group(pid, signal.SIGKILL)
            code, lost = None, str(exc)
        stopped = _finish(run_id)  # its group is dead
        reaper.remove(pid)
        output = read_output(out_fd)
        result = read_result(result_fd)
    finally:
        _finish(run_id)
        os.close(out_fd)
        os.close(result_fd)
    return _outcome(result, code, lost, output, stopped, timeout)


def _fork_run(
    reaper: Reaper, payload: bytes, out_fd: int, result_fd: int
) -> tuple[WarmProcess, int]:
    """Have this thread's warm process fork the run; a warm process found gone before it
    got the run is replaced once (the run had not started)."""
    for attempt in range(2):
        warm = _dask_warm.for_this_thread(reaper)
        try:
            return warm, warm.start(payload, out_fd, result_fd)
        except NotSent:
            _dask_warm.drop(warm)
            if attempt:
                raise
        except WarmLost:
            _dask_warm.drop(warm)
            raise
    raise AssertionError("unreachable")


def _run_notebook(payload: bytes, run_id: str, timeout: float | None) -> tuple[Any, ...]:
    """A notebook run, in a child process started for it (see the module docstring)."""
    reaper = _get_reaper()
    fd, result_path = tempfile.mkstemp(prefix="nbsched-run-", suffix=".pickle")
    os.close(fd)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, result_path, "--notebook"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: one killpg reaches the whole tree
            preexec_fn=_dask_warm.child_setup,  # noqa: PLW1509 - only async-signal-safe calls in it
            close_fds=True,
        )
        with _lock:
            _active[run_id] = _Active(child.pid, child.stdin)
        reaper.add(child.pid)
        _announce(run_id)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_read, args=(child, chunks), daemon=True)
        reader.start()
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # stdin stays open: closing it stops the run
            child.stdin.write(len(payload).to_bytes(8, "big") + payload)
            child.stdin.flush()
        try:  # (the child enforces the timeout itself, and marks the notebook)
            child.wait(timeout + NOTEBOOK_GRACE if timeout else None)
        except subprocess.TimeoutExpired:
            _stop(run_id, "timed_out")  # the worker stops it even if the client is gone
        child.wait()
        stopped = _finish(run_id)
        with contextlib.suppress(OSError):
            child.stdin.close()
        kill_group(child.pid, signal.SIGKILL)  # whatever the body left behind
        reaper.remove(child.pid)
        reader.join(1.0)
        output = _tail(b"".join(chunks))
        try:
            with open(result_path, "rb") as f:
                result = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            result = None
        return _outcome(result, child.returncode, None, output, stopped, timeout)
    finally:
        _finish(run_id)
        # (and the result the child was writing when it was killed, if it was)
        for path in (result_path, result_path + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _finish(run_id: str) -> str | None:
    """Forget a run whose process has ended (a stop now comes too late); the status it was
    stopped with, if it was."""
    with _lock:
        active = _active.pop(run_id, None)
        if active is None:
            return None
        active.done = True
        return active.stopped


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
        active = _active.get(run_id)
        if active is None or active.done:
            return False
        if active.stopped is None:
            active.stopped = status
        pid = active.pid
    if pid is not None:  # (else it is being forked: _run_function stops it once it is)
        _signal_stop(active, pid)
    return True


def _signal_stop(active: _Active, pid: int) -> None:
    """SIGTERM the run's group now (a notebook run: close its stdin), SIGKILL it later."""
    if active.stdin is not None:  # the child kills the kernel and saves the notebook
        with contextlib.suppress(OSError, ValueError):
            active.stdin.close()
        grace = NOTEBOOK_GRACE
    else:
        kill_group(pid, signal.SIGTERM)
        grace = KILL_GRACE
    timer = threading.Timer(grace, _kill_unless_done, (active, pid))
    timer.daemon = True
    timer.start()


def _kill_unless_done(active: _Active, pid: int) -> None:
    with _lock:  # (a group that is done may be gone, and its number someone else's)
        if not active.done:
            kill_group(pid, signal.SIGKILL)


def _outcome(
    result: tuple[Any, ...] | None,
    code: int | None,
    lost: str | None,
    output: str,
    stopped: str | None,
    timeout: float | None,
) -> tuple[Any, ...]:
    """``run_task``'s answer from what the run wrote (``(ok, started, finished, error)``,
    ``None`` if nothing), its exit code, why its warm process was lost, and how it was
    stopped."""
    now = time.time()
    ok, started, finished, error = result if result is not None else (None, None, now, None)
    if stopped is not None:
        why = (
            f"Stopped after its timeout of {timeout} s"
            if stopped == "timed_out"
            else "Cancelled while it ran"
        )
        return stopped, output, why, started, now
    if isinstance(ok, str):  # a notebook run: its status as run_notebook gave it
        return ok, output, error, started, finished
    if ok is None:  # the process died before it could say how the job ended
        if lost is not None:
            how = f"died with the warm process that forked it ({lost})"
        elif code is not None and code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
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


def _main(result_path: str) -> None:
    """A notebook run's child: run the notebook read from stdin and write ``(status,
    started, finished, error)`` to ``result_path``."""
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    from ._dask_notebook import run_in_child

    result = run_in_child(sys.stdin.buffer)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_path + ".tmp", "wb") as f:
        pickle.dump(result, f)
    os.replace(result_path + ".tmp", result_path)


if __name__ == "__main__":
    _main(sys.argv[1])
