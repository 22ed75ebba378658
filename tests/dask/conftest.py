"""One ``LocalCluster`` of two worker processes (one thread each) for the Dask tests, and a
scheduler whose ``"dask"`` executor uses it; a cluster of our own processes for the tests
that kill its scheduler or worker."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsched import Scheduler

distributed = pytest.importorskip("distributed")  # declared in the test extra: never skips


@pytest.fixture(scope="package")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture
def sched(client: Any, tmp_path: Path) -> Iterator[Scheduler]:
    from nbsched.executors.dask import DaskJobExecutor

    executor = DaskJobExecutor(client, output_dir=tmp_path / "runs")
    s = Scheduler(timezone="UTC", executors={"dask": executor})
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_cluster() -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """A Dask scheduler and one worker (2 threads, no nanny) as processes of their own, so a
    test can kill them."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [
            sys.executable, "-m", "distributed.cli.dask_scheduler",
            "--host", "127.0.0.1", "--port", port, "--no-dashboard",
        ],
        **quiet,  # type: ignore[call-overload]
    )
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "distributed.cli.dask_worker", address,
            "--nthreads", "2", "--no-dashboard", "--no-nanny",
        ],
        **quiet,  # type: ignore[call-overload]
    )
    try:
        yield address, scheduler, worker
    finally:
        for p in (worker, scheduler):
            p.kill()
            p.wait(10)
