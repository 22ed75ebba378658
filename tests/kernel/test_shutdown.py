"""Kernel shutdown and restart with a job in flight: the run is recorded ``cancelled`` in the
store, and the kernel exits by itself (no SIGTERM from jupyter_client needed).

``do_shutdown`` is the hook that fires for both (``nbsched.kernel.hooks``); the store is read
afterwards from the test process.
"""

from __future__ import annotations

import pytest

from nbsched.abc import ALL_OWNERS
from nbsched.jobs import Run, RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.kernels import KERNELS, KernelHarness, Kernels

pytestmark = pytest.mark.slow

BUSY_JOB = """\
started.set()
while True:            # never ends by itself
    time.sleep(0.01)
"""


def _start_busy_job(k: KernelHarness) -> None:
    k.run("%load_ext nbsched")
    k.run("import threading, time\nstarted = threading.Event()")
    k.run("%%schedule --every 1s --name busy\n" + BUSY_JOB)
    k.run("assert started.wait(30), 'the job never started'")


def _runs(k: KernelHarness) -> list[Run]:
    store = SQLAlchemyJobStore(k.db_url)
    store.open()
    try:
        return store.get_runs("busy", owner=ALL_OWNERS, limit=10)
    finally:
        store.close()


@pytest.mark.parametrize("kind", KERNELS)
def test_shutdown_cancels_runs_in_flight(kind: str, kernel_factory: Kernels) -> None:
    k = kernel_factory.start(kind, notebook="shutdown.ipynb")
    _start_busy_job(k)
    process = k.process
    k.shutdown()
    # 0, not -SIGTERM: the kernel finished its graceful shutdown inside jupyter_client's grace
    # period (a thread that never ends must not hold it up).
    assert process.wait(timeout=30) == 0
    _check_cancelled(_runs(k))


def _check_cancelled(runs: list[Run]) -> None:
    # (fires that came while the run was busy are recorded "skipped": look for the run)
    cancelled = [r for r in runs if r.status is RunStatus.cancelled]
    assert cancelled, runs
    assert cancelled[0].finished_ts is not None and cancelled[0].started_ts is not None
    assert all(r.status is not RunStatus.running for r in runs), runs


@pytest.mark.parametrize("kind", KERNELS)
def test_restart_cancels_runs_in_flight(kind: str, kernel_factory: Kernels) -> None:
    k = kernel_factory.start(kind, notebook="restart.ipynb")
    _start_busy_job(k)
    k.restart()
    _check_cancelled(_runs(k))
    # The job itself survives the restart and is picked up again by the new kernel.
    k.run("import threading, time\nstarted = threading.Event()")
    k.run("%load_ext nbsched")
    k.run("assert started.wait(30), 'the restored job never started'")
    k.run("%schedule remove busy")
