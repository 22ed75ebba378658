"""``GET /nbsched/api/runs/{id}/notebook``: a notebook run's executed notebook, wherever
``output_dir`` is (the default folder is outside the server's root), read only from the path
the run's record holds."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from nbsched import Scheduler
from nbsched.jobs import Run, RunStatus

pytestmark = pytest.mark.slow


def _executed(path: Path, text: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('ran')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.cells = [cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for ``<jupyter data dir>/nbsched/runs``: outside the server's root."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture
def recorded(kernel_scheduler: Scheduler, runs_dir: Path, root: Path) -> dict[str, Run]:
    """Runs of a notebook job in the store: one with its executed notebook (outside the
    root), one without any, one whose notebook is gone, one that names a file not a
    notebook."""
    store = kernel_scheduler.store
    kernel_scheduler.add_job(str(root / "reports" / "daily.ipynb"), "every 1h", name="daily")
    now = time.time()
    notebook = _executed(runs_dir / "daily" / "daily-1.ipynb", "report of the day\n")
    gone = runs_dir / "daily" / "daily-0.ipynb"
    secret = runs_dir / "secret.txt"
    secret.write_text("not for the API")
    runs = {
        "with": Run(id="k-1", job_name="daily", status=RunStatus.succeeded, scheduled_ts=now,
                    started_ts=now, finished_ts=now + 1, output_path=str(notebook)),
        "without": Run(id="k-2", job_name="daily", status=RunStatus.failed,
                       scheduled_ts=now - 10, error="no kernel"),
        "gone": Run(id="k-3", job_name="daily", status=RunStatus.succeeded,
                    scheduled_ts=now - 20, output_path=str(gone)),
        "not-a-notebook": Run(id="k-4", job_name="daily", status=RunStatus.succeeded,
                              scheduled_ts=now - 30, output_path=str(secret)),
    }
    store.write_runs(list(runs.values()))
    return runs


async def test_a_runs_executed_notebook_outside_the_root(api, recorded, runs_dir):
    code, data = await api("GET", "runs", "k-1", "notebook")
    assert code == 200
    assert data["name"] == "daily-1.ipynb"
    assert data["run_id"] == "k-1" and data["job_name"] == "daily"
    assert data["last_modified"]
    nb = nbformat.from_dict(data["content"])
    nbformat.validate(nb)
    assert "".join(nb.cells[0].outputs[0]["text"]) == "report of the day\n"
    # the run itself says where it is, and that JupyterLab cannot open it from the root
    code, run = await api("GET", "runs", "k-1")
    assert run["output_path"] == str(runs_dir / "daily" / "daily-1.ipynb")
    assert run["output_lab_path"] is None


@pytest.mark.parametrize(
    "run_id, words",
    [
        ("no-such-run", "No run"),
        ("k-2", "no executed notebook"),
        ("k-3", "gone"),
        ("k-4", "no executed notebook"),
    ],
)
async def test_404_without_a_notebook(api, recorded, run_id, words):
    code, data = await api("GET", "runs", run_id, "notebook")
    assert code == 404
    assert words in data["message"]
    assert "not for the API" not in data["message"]


@pytest.mark.parametrize(
    "query",
    [{"path": "/etc/passwd"}, {"output_path": "../secret.txt"}, {"name": "secret.txt"}],
)
async def test_the_caller_cannot_name_the_path(api, jp_fetch, recorded, query):
    """Query arguments and path tricks reach nothing but the run's own notebook."""
    from tornado.httpclient import HTTPClientError

    code, data = await api("GET", "runs", "k-1", "notebook", params=query)
    assert code == 200 and data["name"] == "daily-1.ipynb"
    for parts in (("runs", "..", "..", "secret.txt"), ("runs", "k-1", "..", "k-4", "notebook"),
                  ("runs", "%2Fetc%2Fpasswd", "notebook"), ("runs", "k-4", "notebook")):
        try:
            response = await jp_fetch("nbsched", "api", *parts)
        except HTTPClientError as exc:
            assert exc.response is not None
            response = exc.response
        assert response.code == 404, parts
        assert b"not for the API" not in (response.body or b"")
