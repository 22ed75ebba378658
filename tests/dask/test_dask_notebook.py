"""Notebook jobs on a Dask ``LocalCluster`` (worker processes sharing our file system): the
same run records as local notebook runs -- the executed notebook where the local executor
writes it, the cells' text, the failing cell marked -- and timeouts and cancel that kill the
notebook's kernel on the worker, which stays usable."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from nbsched import Run, RunStatus, Scheduler
from nbsched.errors import InvalidArgumentError
from tests.helpers.processes import pid_alive
from tests.helpers.wait import wait_for
from tests.notebook.conftest import NOTEBOOKS, pids_from, wait_gone

pytestmark = pytest.mark.slow


@pytest.fixture
def nbs(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    shutil.copytree(NOTEBOOKS, folder)
    return folder


def test_a_notebook_runs_on_a_worker_with_its_parameters(
    sched: Scheduler, nbs: Path, tmp_path: Path
) -> None:
    sched.add_job(
        str(nbs / "params.ipynb"), "every 1h", name="report", executor="dask",
        parameters={"day": "mon"},
    )
    run = sched.run_job("report")
    assert run.status is RunStatus.succeeded, run.error
    assert run.output.startswith("'mon' 1\n")  # the cells' text only, as locally
    assert "nbs\n" in run.output  # run in the notebook's folder
    assert run.output_path is not None
    path = Path(run.output_path)
    assert path.parent == tmp_path / "runs" / "report" and path.name.startswith("report-2")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.nbsched.status == "succeeded"
    assert nb.metadata.nbsched.parameters == {"day": "mon"}
    assert all(c.outputs for c in nb.cells if c.cell_type == "code" and "print" in c.source)
    [stored] = sched.get_runs("report")
    assert (stored.output_path, stored.output) == (run.output_path, run.output)


def test_a_failing_notebook_records_the_error_and_marks_the_cell(
    sched: Scheduler, nbs: Path
) -> None:
    sched.add_job(str(nbs / "fails.ipynb"), "every 1h", name="fails", executor="dask")
    run = sched.run_job("fails")
    assert run.status is RunStatus.failed
    assert run.error is not None and "ZeroDivisionError" in run.error
    assert run.output == "before\n"
    assert run.output_path is not None
    nb = nbformat.read(run.output_path, as_version=4)
    assert nb.metadata.nbsched.status == "failed"
    assert "nbsched-error-cell" in nb.cells[0].metadata.tags
    [failing] = [c for c in nb.cells if c.get("source") == "1/0"]
    assert failing.metadata.nbsched.status == "failed"


def test_bad_parameters_are_refused_when_added(sched: Scheduler, nbs: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="'when'"):
        sched.add_job(
            str(nbs / "clock.ipynb"), "every 1h", executor="dask",
            parameters={"when": threading.Lock()},
        )
    assert sched.get_jobs() == []


def _start_sleeper(
    sched: Scheduler, nbs: Path, tmp_path: Path, **options: object
) -> tuple[list[int], threading.Thread, list[Run]]:
    """The ``sleeps`` notebook on the cluster; returns its kernel's and the kernel's child's
    pids (once the kernel wrote them), the thread waiting in ``run_job`` and its result."""
    pidfile = tmp_path / "pids"
    sched.add_job(
        str(nbs / "sleeps.ipynb"), "every 1h", name="sleeper", executor="dask",
        parameters={"pidfile": str(pidfile)}, **options,  # type: ignore[arg-type]
    )
    runs: list[Run] = []
    thread = threading.Thread(target=lambda: runs.append(sched.run_job("sleeper")), daemon=True)
    thread.start()
    wait_for(pidfile.exists, 60, "the notebook's kernel to start on a worker")
    pids = [int(p) for p in pidfile.read_text().split()]
    assert pids and all(map(pid_alive, pids))
    return pids, thread, runs


def _workers_still_take_work(sched: Scheduler) -> None:
    for i in range(2):
        sched.add_job(lambda: print("after"), "every 1h", name=f"after{i}", executor="dask")
        assert sched.run_job(f"after{i}").status is RunStatus.succeeded


def test_a_timeout_kills_the_notebooks_kernel_on_the_worker(
    sched: Scheduler, nbs: Path, tmp_path: Path
) -> None:
    pids, thread, runs = _start_sleeper(sched, nbs, tmp_path, timeout=10)
    thread.join(60)
    [run] = runs
    assert run.status is RunStatus.timed_out
    assert pids_from(run.output) == pids  # what the cells printed before the timeout, as locally
    wait_gone(pids)  # the kernel and what it started
    assert run.output_path is not None
    wait_for(
        lambda: nbformat.read(run.output_path or "", as_version=4).metadata.nbsched.status
        != "running",
        10, "the executed notebook to be saved with its end",
    )
    _workers_still_take_work(sched)


def test_cancel_run_kills_the_notebooks_kernel_on_the_worker(
    sched: Scheduler, nbs: Path, tmp_path: Path
) -> None:
    pids, thread, runs = _start_sleeper(sched, nbs, tmp_path)
    [running] = [r for r in sched.get_runs("sleeper") if r.status is RunStatus.running]
    sched.cancel_run(running.id)
    thread.join(30)
    [run] = runs
    assert run.status is RunStatus.cancelled
    assert pids_from(run.output) == pids  # what the cells printed before the cancel
    wait_for(lambda: sched.get_runs("sleeper")[0].output == run.output, 10, "the stored run")
    wait_gone(pids)
    assert run.output_path is not None
    wait_for(
        lambda: nbformat.read(run.output_path or "", as_version=4).metadata.nbsched.status
        == "cancelled",
        10, "the executed notebook to be saved, marked cancelled",
    )
    _workers_still_take_work(sched)
