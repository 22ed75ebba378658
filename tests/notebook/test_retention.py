"""When retention prunes a run, its executed notebook goes with it (both stores), and nothing
but an ``.ipynb`` is ever deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbsched.abc import JobStore
from nbsched.jobs import Run, RunStatus
from nbsched.stores.memory import MemoryJobStore
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore


def _store(kind: str, tmp_path: Path) -> JobStore:
    if kind == "memory":
        return MemoryJobStore(retention=2)
    return SQLAlchemyJobStore(f"sqlite:///{tmp_path / 'jobs.db'}", retention=2)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_pruned_runs_take_their_notebooks_along(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    store.open()
    try:
        files = []
        for i in range(5):
            path = tmp_path / f"report-{i}.ipynb"
            path.write_text("{}")
            files.append(path)
            # as the scheduler writes them: running first (the path is known), then finished
            for status in (RunStatus.running, RunStatus.succeeded):
                store.write_runs([Run(
                    id=f"r{i}", job_name="report", status=status, scheduled_ts=1000.0 + i,
                    output_path=str(path),
                )])
        other = tmp_path / "notes.txt"
        other.write_text("keep me")
        for i in range(5, 8):  # a row pointing at a file that is no notebook
            store.write_runs([Run(
                id=f"t{i}", job_name="report", status=RunStatus.succeeded,
                scheduled_ts=1000.0 + i, output_path=str(other),
            )])
        assert [f.exists() for f in files] == [False] * 5
        assert other.exists()
        assert len(store.get_runs("report")) == 2
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_runs_without_files_are_pruned_as_before(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    store.open()
    try:
        for i in range(4):
            store.write_runs([Run(id=f"r{i}", job_name="j", status=RunStatus.succeeded,
                                  scheduled_ts=float(i))])
        assert [r.id for r in store.get_runs("j")] == ["r3", "r2"]
    finally:
        store.close()
