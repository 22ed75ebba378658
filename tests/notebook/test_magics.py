"""``%schedule`` and notebooks: adding a notebook job with parameters, and a notebook that
runs as a scheduled job adds no jobs of its own (no recursion)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbsched.runner import run_notebook
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from nbsched.testing import FakeClock
from tests.helpers.shell import TestingShell


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[TestingShell]:
    from nbsched import kernel

    config = Config()
    config.HistoryManager.enabled = False
    config.NbschedConfig.db_url = "memory:"
    config.NbschedConfig.owner = "/notebooks/magics.ipynb"
    config.NbschedConfig.timezone = "UTC"
    config.NbschedConfig.output_dir = str(tmp_path / "executed")
    sh = TestingShell.instance(config=config, ipython_dir=str(tmp_path / "ipython"))
    kernel.load(sh, clock=FakeClock(1_800_000_000.0))
    try:
        yield sh
    finally:
        kernel.unload(sh)
        TestingShell.clear_instance()
        InteractiveShell.clear_instance()


def test_schedule_add_a_notebook_with_parameters(
    shell: TestingShell, nbs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbsched.executors.notebook import NotebookJobExecutor
    from nbsched.kernel.state import loaded

    monkeypatch.chdir(nbs)
    shell.run_line_magic("schedule", "add params.ipynb --every 1h -p day=mon -p n=3")
    sched = loaded().scheduler
    job = sched.get_job("params")
    assert (job.kind, job.executor) == ("notebook", "notebook")
    assert job.target == str(nbs / "params.ipynb")
    assert dict(job.parameters or {}) == {"day": "mon", "n": 3}
    executor = sched._engine.executor("notebook")
    assert isinstance(executor, NotebookJobExecutor)
    assert executor.output_dir == tmp_path / "executed"  # NbschedConfig.output_dir


@pytest.mark.slow
def test_a_notebook_run_as_a_job_does_not_schedule(
    nbs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "jobs.db"
    monkeypatch.setenv("NBSCHED_DB_URL", f"sqlite:///{db}")  # (the run's kernel inherits it)
    result = run_notebook(nbs / "schedules.ipynb", output_path=tmp_path / "out.ipynb")
    assert result.status == "succeeded", result.error
    assert result.output.strip().endswith("jobs: 0")
    nb = nbformat.read(result.output_path, as_version=4)
    said = [
        out.data["text/plain"]
        for cell in nb.cells[1:3]
        for out in cell.outputs
        if "data" in out
    ]
    assert len(said) == 2 and all("skipped" in text and "NBSCHED_RUN=1" in text for text in said)
    store = SQLAlchemyJobStore(f"sqlite:///{db}")
    store.open()
    try:
        assert store.get_jobs() == []
    finally:
        store.close()
