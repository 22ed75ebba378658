"""Notebook jobs through the Scheduler: the implied executor, run records with the executed
notebook, progress events, cancel and timeouts, retention of the notebooks, on-time starts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from nbsched import Run, RunStatus, Scheduler
from nbsched.errors import InvalidArgumentError, TargetLookupError
from nbsched.events import Event, RunFinished, RunProgress, RunStarted
from nbsched.executors.notebook import NotebookJobExecutor
from tests.helpers.wait import wait_for

from .conftest import pids_from, wait_gone


@pytest.fixture
def sched(tmp_path: Path) -> Iterator[Scheduler]:
    s = Scheduler(
        f"sqlite:///{tmp_path / 'jobs.db'}", timezone="UTC",
        executors={"notebook": NotebookJobExecutor(2, output_dir=tmp_path / "runs")},
    )
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def test_bad_notebook_jobs_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    with Scheduler(timezone="UTC") as s:
        with pytest.raises(TargetLookupError, match="No notebook at"):
            s.add_job(str(tmp_path / "missing.ipynb"), "every 1h")
        with pytest.raises(InvalidArgumentError, match="runs notebooks"):
            s.add_job("os.path:join", "every 1h", executor="notebook")
        with pytest.raises(InvalidArgumentError, match="'when'.*datetime"):
            s.add_job(
                str(Path(__file__).parent / "notebooks" / "clock.ipynb"), "every 1h",
                parameters={"when": __import__("datetime").datetime(2026, 1, 1)},
            )
        assert s.get_jobs() == []


def test_an_ipynb_target_implies_the_notebook_executor(nbs: Path, tmp_path: Path) -> None:
    with Scheduler(f"sqlite:///{tmp_path / 'j.db'}", timezone="UTC") as s:
        job = s.add_job(str(nbs / "params.ipynb"), "every 1h", parameters={"day": "mon"})
        assert (job.name, job.kind, job.executor) == ("params", "notebook", "notebook")
        assert job.target == str(nbs / "params.ipynb")
        assert dict(job.parameters or {}) == {"day": "mon"}


def test_a_notebook_gone_since_it_was_scheduled_fails_its_run(
    sched: Scheduler, nbs: Path
) -> None:
    sched.add_job(str(nbs / "clock.ipynb"), "every 1h", name="gone")
    (nbs / "clock.ipynb").unlink()
    run = sched.run_job("gone")
    assert run.status == RunStatus.failed
    assert run.error is not None and "No notebook at" in run.error
    assert run.output_path is None


@pytest.mark.slow
def test_run_job_records_the_executed_notebook_output_and_progress(
    sched: Scheduler, nbs: Path, tmp_path: Path
) -> None:
    events: list[Event] = []
    sched.add_listener(events.append)
    sched.add_job(str(nbs / "params.ipynb"), "every 1h", name="report", parameters={"day": "mon"})
    run = sched.run_job("report")
    assert run.status == RunStatus.succeeded, run.error
    assert run.output.startswith("'mon' 1\n")
    assert run.output_path is not None
    path = Path(run.output_path)
    assert path.parent == tmp_path / "runs" / "report" and path.name.startswith("report-2")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.nbsched.status == "succeeded"
    assert nb.metadata.nbsched.parameters == {"day": "mon"}
    progress = [(e.cells_done, e.cells_total) for e in events if isinstance(e, RunProgress)]
    assert progress == [(i, 5) for i in range(6)]
    assert all(e.run_id == run.id for e in events if isinstance(e, RunProgress))
    [stored] = sched.get_runs("report")
    assert (stored.output_path, stored.output) == (run.output_path, run.output)


@pytest.mark.slow
def test_a_failing_notebook_run_is_failed_with_its_notebook_saved(
    sched: Scheduler, nbs: Path
) -> None:
    sched.add_job(str(nbs / "fails.ipynb"), "every 1h", name="fails")
    run = sched.run_job("fails")
    assert run.status == RunStatus.failed
    assert run.error is not None and "ZeroDivisionError" in run.error
    assert run.output == "before\n"
    assert run.output_path is not None
    nb = nbformat.read(run.output_path, as_version=4)
    assert nb.metadata.nbsched.status == "failed"
    assert "nbsched-error-cell" in nb.cells[0].metadata.tags


def _start_sleeper(
    sched: Scheduler, nbs: Path, **options: object
) -> tuple[str, list[int], threading.Thread, list[Run]]:
    started: list[str] = []
    sched.add_listener(lambda e: started.append(e.run_id), RunStarted)  # type: ignore[attr-defined]
    target = str(nbs / "sleeps.ipynb")
    sched.add_job(target, "every 1h", name="sleeper", **options)  # type: ignore[arg-type]
    runs: list[Run] = []
    thread = threading.Thread(target=lambda: runs.append(sched.run_job("sleeper")))
    thread.start()
    wait_for(lambda: started, 60, "the run to start")
    executor = sched._engine.executor("notebook")
    assert isinstance(executor, NotebookJobExecutor)
    wait_for(lambda: pids_from("".join(executor._running[started[0]].output)), 30, "the pids")
    return started[0], pids_from("".join(executor._running[started[0]].output)), thread, runs


@pytest.mark.slow
def test_cancel_run_kills_the_kernel_tree(sched: Scheduler, nbs: Path) -> None:
    run_id, pids, thread, runs = _start_sleeper(sched, nbs)
    sched.cancel_run(run_id)
    thread.join(30)
    [run] = runs
    assert run.status == RunStatus.cancelled
    wait_gone(pids)
    assert run.output_path is not None
    assert nbformat.read(run.output_path, as_version=4).metadata.nbsched.status == "cancelled"


@pytest.mark.slow
def test_run_output_streams_the_cells_of_a_running_notebook(sched: Scheduler, nbs: Path) -> None:
    sched.add_job(str(nbs / "sleeps.ipynb"), "every 1h", name="sleeper")
    run_id = sched.start_run("sleeper")
    assert sched.run_output(run_id) in (None, "")  # its kernel is still starting
    try:
        # Through the scheduler, while the notebook sleeps in its third cell
        wait_for(lambda: pids_from(sched.run_output(run_id) or ""), 60, "the pids line")
        assert sched.get_runs("sleeper")[0].status is RunStatus.running
        pids = pids_from(sched.run_output(run_id) or "")
    finally:
        sched.cancel_run(run_id)
    wait_gone(pids)
    [run] = sched.get_runs("sleeper")
    assert run.status is RunStatus.cancelled and pids_from(run.output) == pids
    assert sched.run_output(run_id) is None


@pytest.mark.slow
def test_a_job_timeout_kills_the_kernel_tree(sched: Scheduler, nbs: Path) -> None:
    _, pids, thread, runs = _start_sleeper(sched, nbs, timeout=10)
    thread.join(60)
    [run] = runs
    assert run.status == RunStatus.timed_out
    assert run.error is not None and "timed out" in run.error
    wait_gone(pids)


@pytest.mark.slow
def test_retention_deletes_the_notebooks_of_pruned_runs(nbs: Path, tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    with Scheduler(
        f"sqlite:///{tmp_path / 'jobs.db'}", timezone="UTC", retention=2,
        executors={"notebook": NotebookJobExecutor(output_dir=runs_dir)},
    ) as s:
        s.add_job(str(nbs / "clock.ipynb"), "every 1h", name="clock")
        for _ in range(5):
            assert s.run_job("clock").status == RunStatus.succeeded
    files = sorted((runs_dir / "clock").glob("*.ipynb"))
    with Scheduler(f"sqlite:///{tmp_path / 'jobs.db'}", timezone="UTC") as s:
        kept = sorted(Path(r.output_path or "") for r in s.get_runs("clock"))
    assert len(files) == 2
    assert files == kept


@pytest.mark.slow
def test_the_kernel_starts_before_the_fire_time_and_the_first_cell_on_it(
    sched: Scheduler, nbs: Path
) -> None:
    """The executor asks for its runs ``lead`` seconds early (the scheduler hands them over
    with ``not_before``): the kernel starts before the fire time, the first cell after it."""
    finished: list[Run] = []
    sched.add_listener(lambda e: finished.append(e.run), RunFinished)  # type: ignore[attr-defined]
    sched.add_job(str(nbs / "ontime.ipynb"), "in 8 seconds", name="ontime")
    wait_for(lambda: finished, 60, "the run")
    [run] = finished
    assert run.status == RunStatus.succeeded, run.error
    first_cell, kernel_created = map(float, run.output.split())
    assert run.started_ts is not None
    assert kernel_created < run.scheduled_ts <= run.started_ts <= first_cell
