"""nbsched._exits: exit callbacks run once, first, and in bounded time, however the
process ends. The process-wide hooks (atexit, signal handlers) are tested in subprocesses."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nbsched import _exits as _lifecycle
from nbsched.kernel.hooks import install_kernel_hooks


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[_lifecycle._ExitRegistry]:
    """A private registry, so that these tests never run the exit callbacks of anything else
    living in the test process."""
    reg = _lifecycle._ExitRegistry()
    monkeypatch.setattr(_lifecycle, "_registry", reg)
    yield reg


def test_callbacks_run_once_newest_first(registry: _lifecycle._ExitRegistry) -> None:
    calls: list[str] = []
    _lifecycle.on_exit(lambda: calls.append("first"))
    unregister = _lifecycle.on_exit(lambda: calls.append("dropped"))
    _lifecycle.on_exit(lambda: calls.append("last"))
    unregister()
    _lifecycle.run_exit_callbacks("test")
    _lifecycle.run_exit_callbacks("test again")
    assert calls == ["last", "first"]


def test_errors_are_logged_and_swallowed(
    registry: _lifecycle._ExitRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("broken callback")

    _lifecycle.on_exit(lambda: calls.append("still runs"))
    _lifecycle.on_exit(broken)
    _lifecycle.run_exit_callbacks("test")
    assert calls == ["still runs"]
    assert "broken callback" in caplog.text


def test_a_hanging_callback_does_not_hang_the_caller(registry: _lifecycle._ExitRegistry) -> None:
    release = threading.Event()
    entered = threading.Event()

    def hang() -> None:
        entered.set()
        release.wait(30)

    _lifecycle.on_exit(hang)
    _lifecycle.run_exit_callbacks("test", timeout=0.1)  # returns although hang() has not
    assert entered.is_set() and not release.is_set()
    release.set()


class FakeKernel:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self.calls.append(("do_shutdown", restart))
        return {"status": "ok", "restart": restart}


def test_kernel_hook_runs_callbacks_before_do_shutdown(
    registry: _lifecycle._ExitRegistry,
) -> None:
    kernel = FakeKernel()
    install_kernel_hooks(kernel)
    install_kernel_hooks(kernel)  # idempotent: wrapped once
    _lifecycle.on_exit(lambda: kernel.calls.append("cleanup"))
    assert kernel.do_shutdown(True) == {"status": "ok", "restart": True}
    assert kernel.calls == ["cleanup", ("do_shutdown", True)]


def _program(body: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # Default dispositions whatever this test run inherited (under nohup SIGHUP is ignored,
    # and _lifecycle rightly leaves an ignored signal alone).
    prelude = (
        "import os, signal, sys, threading, time\n"
        "for _sig in (signal.SIGTERM, signal.SIGHUP):\n"
        "    signal.signal(_sig, signal.SIG_DFL)\n"
        "from nbsched import _exits as _lifecycle\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_exit_callbacks_run_before_concurrent_futures_joins_its_workers() -> None:
    # The worker thread blocks until our callback releases it. If concurrent.futures'
    # exit handler (which joins the worker) ran first, the program would hang.
    proc = _program("""
        import concurrent.futures
        release = threading.Event()
        pool = concurrent.futures.ThreadPoolExecutor(1)
        pool.submit(release.wait)
        _lifecycle.on_exit(lambda: (print("callback", flush=True), release.set()))
        sys.exit(88)
    """)
    assert proc.returncode == 88, proc.stderr
    assert proc.stdout == "callback\n"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_runs_callbacks_then_kills_the_process_with_it(signum: int) -> None:
    proc = _program(f"""
        _lifecycle.on_exit(lambda: print("callback", flush=True))
        try:
            os.kill(os.getpid(), {int(signum)})
            time.sleep(30)
        except SystemExit:  # what IPython would swallow in a running cell: must not happen
            print("SystemExit", flush=True)
    """)
    assert proc.returncode == -signum, proc.stderr
    assert proc.stdout == "callback\n"


@pytest.mark.slow
def test_signal_handler_chains_to_the_previous_one() -> None:
    proc = _program("""
        signal.signal(signal.SIGTERM, lambda *a: (print("previous", flush=True), os._exit(7)))
        _lifecycle.on_exit(lambda: print("callback", flush=True))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "callback\nprevious\n"


@pytest.mark.slow
def test_signal_handlers_only_from_the_main_thread_and_never_over_sig_ign() -> None:
    proc = _program("""
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # e.g. started under nohup
        t = threading.Thread(target=_lifecycle.on_exit, args=(lambda: None,))
        t.start(); t.join()
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)  # not from a thread
        _lifecycle.on_exit(lambda: None)
        print(signal.getsignal(signal.SIGTERM) is _lifecycle._on_signal)  # main thread: yes
        print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)  # left ignored
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True"]
