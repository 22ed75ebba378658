"""The processes jobs start: find them by their marker variable, wait for them to end (with
a bound), kill what a failed test left behind, and say what a stuck process is doing.

The process executor marks every job process (workers and their children, and the
forkserver and resource tracker when nbsched started them) with ``NBSCHED_WORKER=<pid of
the owning process>``, and its reaper with ``NBSCHED_REAPER=<pid>``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

import psutil

from .wait import wait_for

__all__ = [
    "REAPER_ENV",
    "WORKER_ENV",
    "alive",
    "kill_marked",
    "marked",
    "read_pids",
    "thread_signals",
    "wait_dead",
    "wait_no_marked",
]

WORKER_ENV = "NBSCHED_WORKER"
REAPER_ENV = "NBSCHED_REAPER"


def alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is dead; only its parent's wait() is missing)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pid_alive(pid: int) -> bool:
    """:func:`alive`, by pid (a pid that is gone: False)."""
    try:
        return alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def marked(
    owner_pid: int, variables: Iterable[str] = (WORKER_ENV, REAPER_ENV)
) -> list[psutil.Process]:
    """Live processes whose environment carries one of ``variables`` = ``owner_pid``: every
    job process (workers, their children; the forkserver and resource tracker when nbsched
    started them) and the reaper of the process ``owner_pid``."""
    token = str(owner_pid)
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info.get("environ") or {}
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(env.get(var) == token for var in variables):
            found.append(proc)
    return found


def wait_no_marked(owner_pid: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until no process marked with ``owner_pid`` is alive."""
    last: list[psutil.Process] = []

    def none_left() -> bool:
        nonlocal last
        last = [p for p in marked(owner_pid) if alive(p)]
        return not last

    try:
        # a scan reads every process's environment (~10 ms): poll gently, the box is shared
        wait_for(none_left, timeout, f"job processes of pid {owner_pid} to exit", poll=0.05)
    except AssertionError:
        desc = [_describe(p) for p in last]
        raise AssertionError(f"processes of pid {owner_pid} still alive: {desc}") from None


def wait_dead(pids: Iterable[int], timeout: float = 10.0) -> None:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    wait_for(lambda: not any(alive(p) for p in procs), timeout, f"pids {list(pids)} to exit")


def kill_marked(owner_pid: int) -> list[str]:
    """Teardown: SIGKILL whatever is left (by psutil object, so a reused pid is never hit)."""
    left = [p for p in marked(owner_pid) if alive(p)]
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    return [_describe(p) for p in left]


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid}:{' '.join(proc.cmdline())[:80]}"
    except psutil.Error:
        return str(proc.pid)


def read_pids(path: os.PathLike[str] | str, timeout: float = 20.0) -> list[int]:
    """Wait for a job's pid file (see ``_jobs.tree``) and return its pids."""
    wait_for(lambda: os.path.exists(path), timeout, f"pid file {path}")
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def thread_signals(pid: int) -> str:
    """Each thread of process ``pid`` with its state, where it waits and its blocked and
    pending signal masks (``/proc``; Linux): what a failed interrupt test needs to say."""
    found = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as exc:
        return f"({exc})"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/status") as f:
                status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
            with open(f"{base}/wchan") as f:
                wchan = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        fields = ("Name", "State", "SigBlk", "SigPnd", "ShdPnd")
        found.append(" ".join(status.get(k, "?").strip() for k in fields) + f" {wchan}")
    return "; ".join(found)
