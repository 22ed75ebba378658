"""Notebook jobs through the REST API. These need the notebook executor (``add_job`` of a
``.ipynb`` path, ``Run.output_path``), which arrives with the notebook-jobs branch: they run
once both are merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import until

pytestmark = pytest.mark.slow


async def test_schedule_a_notebook_and_run_it(api, root: Path):
    body = {"notebook": "reports/daily.ipynb", "schedule": "every day at 9:00", "name": "daily",
            "parameters": {"day": "monday"}, "timezone": "Europe/Paris", "timeout": 120}
    code, job = await api("POST", "jobs", body=body)
    assert code == 201, job
    assert job["name"] == "daily" and job["kind"] == "notebook"
    assert job["executor"] == "notebook"
    assert Path(job["target"]) == (root / "reports" / "daily.ipynb").resolve()
    assert job["lab_path"] == "reports/daily.ipynb"
    assert job["description"] == "At 09:00" and job["timezone"] == "Europe/Paris"
    assert job["parameters"] == {"day": "monday"} and job["timeout"] == 120

    code, again = await api("POST", "jobs", body=body)
    assert code == 409 and "daily" in again["message"]

    code, data = await api("POST", "jobs", "daily", "run")
    assert code == 202
    run_id = data["run_id"]

    async def finished() -> bool:
        code, run = await api("GET", "runs", run_id)
        return code == 200 and run["status"] != "running"

    await until(finished, timeout=120, what="the notebook run to finish")
    code, run = await api("GET", "runs", run_id)
    assert run["status"] == "succeeded", run
    assert run["output_path"] and Path(run["output_path"]).is_file()
    assert "report ran" in Path(run["output_path"]).read_text()


async def test_a_schedule_that_never_fires_is_400(api, root: Path):
    code, err = await api(
        "POST", "jobs", body={"notebook": "reports/daily.ipynb", "schedule": "at 2001-01-01 09:00"}
    )
    assert code == 400 and "never" in err["message"]
    code, data = await api("GET", "jobs")
    assert data["jobs"] == []
