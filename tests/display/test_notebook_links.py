"""Runs of notebook jobs point at their executed notebooks in ``logs``/``run``/``show`` and
``list``: a link JupyterLab opens when the notebook lies below the kernel's folder, else the
path to copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbsched.display import JobTable, RunLog
from nbsched.jobs import Job, Run, RunStatus
from nbsched.triggers import IntervalTrigger

NOW = 1_800_000_000.0


def run(path: Path | None) -> Run:
    return Run(
        id="r1",
        job_name="report",
        status=RunStatus.succeeded,
        scheduled_ts=NOW - 5,
        started_ts=NOW - 5,
        finished_ts=NOW - 2,
        output="done\n",
        output_path=None if path is None else str(path),
    )


def test_a_run_below_the_kernels_folder_links_to_its_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    executed = tmp_path / "runs" / "report" / "report-1.ipynb"
    log = RunLog([run(executed)], NOW)
    assert f"executed notebook: {executed}" in repr(log)
    assert 'href="runs/report/report-1.ipynb"' in log._repr_html_()
    shown = RunLog([run(executed)], NOW, show_output=False)  # (inside %schedule show)
    assert str(executed) in repr(shown) and 'href="runs/report' in shown._repr_html_()


def test_a_run_elsewhere_shows_the_path_to_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    executed = tmp_path / "data" / "report-1.ipynb"
    html = RunLog([run(executed)], NOW)._repr_html_()
    assert "href=" not in html and f"<code>{executed}</code>" in html


def test_a_run_without_a_notebook_mentions_none(tmp_path: Path) -> None:
    log = RunLog([run(None)], NOW)
    assert "executed notebook" not in repr(log) and "executed notebook" not in log._repr_html_()


def test_list_links_the_last_runs_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    job = Job(
        name="report",
        kind="notebook",
        target=str(tmp_path / "report.ipynb"),
        trigger=IntervalTrigger(3600),
        executor="notebook",
    )
    executed = tmp_path / "runs" / "report-1.ipynb"
    table = JobTable([job], {"report": run(executed)}, NOW, None)
    assert 'href="runs/report-1.ipynb"' in table._repr_html_()
