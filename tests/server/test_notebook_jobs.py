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
    assert code == 400 and "never fires after now" in err["message"]
    code, data = await api("GET", "jobs")
    assert data["jobs"] == []


def test_schedule_dialog_in_the_browser_schedules_and_runs(tmp_path: Path) -> None:
    """Right-click a notebook, "Schedule…", pick a schedule, and see the job run in the
    sidebar; the notebook's toolbar offers "Schedule…" too."""
    from .browser import lab_page, shot
    from .live import live_server

    with live_server(tmp_path, lab=True) as lab, lab_page(lab) as page:
        page.locator('.jp-DirListing-item[data-file-type="directory"]',
                     has_text="reports").dblclick()
        page.locator('.jp-DirListing-item[data-file-type="notebook"]',
                     has_text="daily.ipynb").click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="Schedule…").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator(".nbsched-input-schedule").fill("every 10s")
        dialog.locator(".nbsched-preview-words", has_text="10 seconds").wait_for(timeout=10_000)
        dialog.locator(".nbsched-input-parameters").fill('greeting = "hi"')
        shot(page, "dialog-filled")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()

        page.evaluate("() => window.jupyterapp.commands.execute('nbsched:open')")
        job = page.locator('#nbsched-sidebar [data-nbsched-job="daily"]')
        job.wait_for(timeout=30_000)
        code, data = lab.api("GET", "jobs/daily")
        assert code == 200 and data["kind"] == "notebook"
        assert data["parameters"] == {"greeting": "hi"}
        group = page.locator("#nbsched-sidebar .nbsched-group", has=job)
        assert "reports/daily.ipynb" in group.locator(".nbsched-group-title").inner_text()
        job.locator(".nbsched-run-succeeded").wait_for(timeout=120_000)
        shot(page, "notebook-job-ran")

        # the notebook's own toolbar offers "Schedule…", with the notebook filled in
        group.locator(".nbsched-group-title").click()
        button = page.locator(".jp-NotebookPanel .nbsched-toolbar-schedule").first
        button.wait_for(timeout=60_000)
        button.click()
        again = page.locator(".jp-Dialog")
        again.wait_for(timeout=10_000)
        assert "reports/daily.ipynb" in again.locator(".nbsched-form-notebook").inner_text()
        shot(page, "toolbar-schedule")
        again.locator(".jp-Dialog-button", has_text="Cancel").click()

        # the run history links to the executed notebook when it lies under the root
        _, runs = lab.api("GET", "runs?job=daily&limit=1")
        if runs["runs"][0]["output_lab_path"]:
            job.locator('[data-nbsched-action="history"]').click()
            job.locator(".nbsched-history .nbsched-link-button",
                        has_text="Open notebook").first.click()
            page.locator(".jp-NotebookPanel-notebook .jp-OutputArea-output",
                         has_text="report ran").first.wait_for(timeout=60_000)
            shot(page, "executed-notebook")
