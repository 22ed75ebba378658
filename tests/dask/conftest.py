"""One ``LocalCluster`` of two worker processes (one thread each) for the Dask tests, and a
scheduler whose ``"dask"`` executor uses it."""

from __future__ import annotations

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
