"""Job functions for the process-executor tests, importable by worker processes (so they are
pickled by reference, like functions from a user's module)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def add(a: int, b: int) -> int:
    print(f"{a} + {b} = {a + b}")
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def noisy() -> None:
    print("from print")
    sys.stdout.flush()
    os.write(1, b"from fd 1\n")
    print("from stderr", file=sys.stderr)
    subprocess.run(["echo", "from a grandchild"], check=True)
    print("last line", end="")


def tree(pidfile: str, seconds: float = 600, ignore_term: bool = False) -> None:
    """Start a grandchild, publish ``"<worker pid> <grandchild pid>"`` in ``pidfile``, sleep.

    With ``ignore_term`` the grandchild ignores SIGTERM (only SIGKILL removes it)."""
    cmd = ["sleep", str(seconds)]
    if ignore_term:
        cmd = ["sh", "-c", f"trap '' TERM; exec sleep {seconds}"]
    child = subprocess.Popen(cmd)
    print("tree started", flush=True)
    tmp = pidfile + ".tmp"
    Path(tmp).write_text(f"{os.getpid()} {child.pid}")
    os.replace(tmp, pidfile)  # atomic: the test never reads half a file
    time.sleep(seconds)


def exit_with(code: int) -> None:
    os._exit(code)


def kill_self(sig: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def worker_facts() -> None:
    """Print what the tests check about a worker's setup."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_int(0)
    libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    print(f"pid={os.getpid()}")
    print(f"pgid={os.getpgrp()}")
    print(f"marker={os.environ.get('NBSCHED_WORKER')}")
    print(f"sigint_ignored={signal.getsignal(signal.SIGINT) is signal.SIG_IGN}")
    print(f"sigterm_default={signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}")
    print(f"blocked={sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))}")
    print(f"pdeathsig={value.value}")
    print(f"main={sys.modules['__main__'].__dict__.get('__file__')}")


def stubborn(pidfile: str) -> None:
    """A job that ignores SIGTERM itself, and whose grandchild does too."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tree(pidfile, 600, ignore_term=True)


def print_then_wait(line: str, go: str, seconds: float = 30) -> None:
    """Print ``line`` (and the same through fd 1 and a grandchild), then wait until the file
    ``go`` exists (at most ``seconds``), then print ``"done"``."""
    print(line)
    os.write(1, f"{line} via fd\n".encode())
    subprocess.run(["echo", f"{line} via a grandchild"], check=True)
    deadline = time.monotonic() + seconds
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("done")
