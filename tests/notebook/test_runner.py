"""run_notebook with real kernels: the output notebook, progress and streamed text, failure
marks, and timeouts and cancel that leave no process behind."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from nbsched.errors import InvalidArgumentError, TargetLookupError
from nbsched.runner import NotebookResult, default_output_path, run_notebook
from tests.helpers.wait import wait_for

from .conftest import pids_from, reapers, wait_gone


def test_default_output_path() -> None:
    when = datetime(2026, 12, 7, 13, 0, 0, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    path = default_output_path("report", when, "/runs")
    assert path == Path("/runs/report/report-20261207T120000Z.ipynb")
    assert default_output_path("a/b c", when, "/r").parent == Path("/r/a_b_c")
    assert default_output_path("..", when, "/r").parent == Path("/r/job")
    with pytest.raises(InvalidArgumentError, match="aware"):
        default_output_path("x", datetime(2026, 1, 1), "/r")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    with pytest.raises(TargetLookupError, match="No notebook at"):
        run_notebook(tmp_path / "missing.ipynb", output_path=out)
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(InvalidArgumentError, match="not a readable notebook"):
        run_notebook(tmp_path / "bad.ipynb", output_path=out)
    with pytest.raises(InvalidArgumentError, match="'x'.*object"):
        run_notebook(Path(__file__).parent / "notebooks" / "clock.ipynb",
                     parameters={"x": object()}, output_path=out)
    assert not out.exists()


@pytest.mark.slow
def test_a_run_writes_its_notebook_and_reports_progress_and_output(
    nbs: Path, tmp_path: Path
) -> None:
    progress: list[tuple[int, int]] = []
    chunks: list[str] = []
    out = tmp_path / "runs" / "clock.ipynb"
    result = run_notebook(
        nbs / "clock.ipynb", output_path=out, on_progress=lambda d, t: progress.append((d, t)),
        on_output=chunks.append,
    )
    assert isinstance(result, NotebookResult)
    assert (result.status, result.error) == ("succeeded", None)
    assert (result.cells_done, result.cells_total) == (2, 2)
    assert progress == [(0, 2), (1, 2), (2, 2)]
    assert result.output == "".join(chunks)
    # the kernel knows it is a scheduled run, and runs in the notebook's folder
    assert result.output.splitlines()[-1] == "NBSCHED_RUN 1 nbs"
    assert result.output_path == out
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.nbsched.status == "succeeded"
    assert [c.metadata.nbsched.status for c in nb.cells] == ["completed", "completed"]
    assert not list(out.parent.glob(".*.tmp"))  # (atomic saves leave no temporary file)
    # the reaper that covers a run's kernel runs while a run is in flight only
    wait_for(lambda: not reapers(), 10, "the reaper to exit")


@pytest.mark.slow
def test_the_kernel_listens_on_unix_sockets_of_the_run_that_go_with_it(tmp_path: Path) -> None:
    """Not on TCP ports any local user could reach (ipykernel says so on stderr at every
    start); the socket files go when the run ends."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from ipykernel.kernelapp import IPKernelApp\n"
        "app = IPKernelApp.instance()\n"
        "print(app.transport, app.ip)"
    )]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "where.ipynb"
    nbformat.write(nb, path)
    result = run_notebook(path, output_path=tmp_path / "out.ipynb")
    assert result.status == "succeeded", result.error
    transport, ip = result.output.split()
    assert transport == "ipc"
    assert Path(ip).parent.name.startswith("nbsched-kernel-")
    assert not Path(ip).parent.exists()


@pytest.mark.slow
def test_a_failed_run_saves_its_notebook_with_the_failing_cell_marked(
    nbs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fails.ipynb"
    result = run_notebook(nbs / "fails.ipynb", output_path=out)
    assert result.status == "failed"
    assert result.error is not None and "ZeroDivisionError" in result.error
    assert "In [2]" in result.error
    assert (result.cells_done, result.cells_total, result.output) == (1, 3, "before\n")
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.nbsched.status == "failed"
    banner, *cells = nb.cells
    assert "nbsched-error-cell" in banner.metadata.tags
    assert "An exception was encountered at" in banner.source and "In [2]" in banner.source
    anchor = cells[1]
    assert "nbsched-error-cell" in anchor.metadata.tags
    assert 'id="nbsched-error-cell"' in anchor.source
    statuses = [c.metadata.nbsched.status for c in cells if c.cell_type == "code"]
    assert statuses == ["completed", "failed", "pending"]
    assert cells[2].outputs[0].ename == "ZeroDivisionError"
    # running the executed notebook again strips the marks
    again = run_notebook(out, output_path=tmp_path / "again.ipynb")
    nb2 = nbformat.read(again.output_path, as_version=4)
    assert sum("nbsched-error-cell" in c.metadata.get("tags", []) for c in nb2.cells) == 2


def _run_in_thread(**kwargs: object) -> tuple[threading.Thread, list[NotebookResult], list[str]]:
    results: list[NotebookResult] = []
    chunks: list[str] = []

    def target() -> None:
        results.append(run_notebook(on_output=chunks.append, **kwargs))  # type: ignore[arg-type]

    thread = threading.Thread(target=target)
    thread.start()
    return thread, results, chunks


@pytest.mark.slow
def test_cancel_kills_the_kernel_and_what_it_started(nbs: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    out = tmp_path / "sleeps.ipynb"
    thread, results, chunks = _run_in_thread(
        path=nbs / "sleeps.ipynb", output_path=out, cancel=cancel
    )
    wait_for(lambda: pids_from("".join(chunks)), 60, "the kernel and its child")
    pids = pids_from("".join(chunks))
    # saved after each cell: the output of the cell that started the child is on disk
    wait_for(lambda: "pids" in out.read_text(), 10, "the progressive save")
    cancel.set()
    thread.join(30)
    assert not thread.is_alive()
    [result] = results
    assert result.status == "cancelled"
    wait_gone(pids)
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.nbsched.status == "cancelled"
    assert "was cancelled in" in nb.cells[0].source


@pytest.mark.slow
def test_cell_timeout_kills_the_kernel_tree(nbs: Path, tmp_path: Path) -> None:
    chunks: list[str] = []
    result = run_notebook(
        nbs / "sleeps.ipynb", output_path=tmp_path / "o.ipynb", cell_timeout=2,
        on_output=chunks.append,
    )
    assert result.status == "timed_out"
    assert result.error is not None and "cell timeout" in result.error
    wait_gone(pids_from(result.output))
    assert result.cells_done == 2  # the injected-free notebook: parameters and Popen cells


@pytest.mark.slow
def test_run_timeout_kills_the_kernel_tree(nbs: Path, tmp_path: Path) -> None:
    result = run_notebook(nbs / "sleeps.ipynb", output_path=tmp_path / "o.ipynb", timeout=8)
    assert result.status == "timed_out"
    assert result.error == "Run timed out after 8 s"
    pids = pids_from(result.output)
    assert pids, "the kernel should have started within the timeout"
    wait_gone(pids)


@pytest.mark.slow
def test_callable_from_a_thread_whose_event_loop_is_running(nbs: Path, tmp_path: Path) -> None:
    """As in a cell of an IPython kernel: nbclient gets a loop of its own."""

    async def inside_a_loop() -> NotebookResult:
        return run_notebook(nbs / "clock.ipynb", output_path=tmp_path / "o.ipynb")

    assert asyncio.run(inside_a_loop()).status == "succeeded"


@pytest.mark.slow
def test_start_at_waits_for_the_first_cell(nbs: Path, tmp_path: Path) -> None:
    """The kernel starts at once; the first cell waits for ``start_at``."""
    import time

    started: list[float] = []
    at = time.time() + 6
    result = run_notebook(
        nbs / "ontime.ipynb", output_path=tmp_path / "o.ipynb", start_at=at,
        on_start=lambda: started.append(time.time()) and None,
    )
    assert result.status == "succeeded"
    first_cell, kernel_created = map(float, result.output.split())
    assert kernel_created < at <= started[0] <= first_cell
