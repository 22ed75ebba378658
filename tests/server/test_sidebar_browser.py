"""The JupyterLab extension in a real browser (Debian chromium via Playwright) on a real
JupyterLab with the extension built in this tree: the sidebar, its buttons, the status bar,
"Schedule…" in the file browser, and the notification of a failed run. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsched import Scheduler
from nbsched.jobs import CellTarget

from .browser import lab_page, shot
from .live import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("lab"), lab=True) as server:
        yield server


def _add(server: LiveServer, target: Any, name: str, schedule: str = "every 1h",
         owner: str | None = None) -> None:
    """A job made outside a kernel (as ``nbsched add`` makes them: the server serves it), or
    a kernel's job when ``owner`` names its notebook."""
    s = Scheduler(server.db_url, timezone="UTC", owner=owner)
    s.store.open()
    try:
        s.add_job(target, schedule, name=name)
    finally:
        s.store.close()


def _until(predicate: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_sidebar_shows_jobs_and_pauses_one(lab: LiveServer) -> None:
    _add(lab, "tests.server.jobfuncs:hello", "hello", "*/5 * * * *")
    _add(lab, CellTarget("refresh_prices()"), "prices", "every weekday at 7:30",
         owner="analysis/sales.ipynb")
    _until(lambda: lab.api("GET", "jobs/hello")[0] == 200, what="the job in the API")
    with lab_page(lab) as page:
        page.evaluate("() => window.jupyterapp.commands.execute('nbsched:open')")
        job = page.locator('#nbsched-sidebar [data-nbsched-job="hello"]')
        job.wait_for(timeout=30_000)
        assert "Every 5 minutes" in job.inner_text()
        kernels = page.locator("#nbsched-sidebar .nbsched-group",
                               has=page.locator('[data-nbsched-job="prices"]'))
        assert kernels.locator(".nbsched-group-title").inner_text() == "analysis/sales.ipynb"
        page.locator("#nbsched-sidebar .nbsched-countdown").first.wait_for(timeout=10_000)
        assert page.locator("#nbsched-status").inner_text().startswith("2 jobs")
        shot(page, "sidebar")

        job.locator('[data-nbsched-action="pause"]').click()
        _until(lambda: lab.api("GET", "jobs/hello")[1]["paused"] is True,
               what="the job to be paused")
        job.locator('[data-nbsched-action="resume"]').wait_for(timeout=10_000)
        assert "paused" in job.inner_text()
        shot(page, "sidebar-paused")

        job.locator('[data-nbsched-action="resume"]').click()
        _until(lambda: lab.api("GET", "jobs/hello")[1]["paused"] is False,
               what="the job to be resumed")

        job.locator('[data-nbsched-action="run"]').click()
        job.locator(".nbsched-run-succeeded").wait_for(timeout=30_000)
        job.locator('[data-nbsched-action="history"]').click()
        job.locator(".nbsched-history .nbsched-run").first.wait_for(timeout=10_000)
        job.locator(".nbsched-history .nbsched-link-button", has_text="Output").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=10_000)
        assert "hello from the server's scheduler" in dialog.inner_text()
        shot(page, "run-output")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()

        page.locator('#nbsched-sidebar [data-nbsched-job="hello"] '
                     '[data-nbsched-action="remove"]').click()
        page.locator(".jp-Dialog .jp-mod-warn").click()
        _until(lambda: lab.api("GET", "jobs/hello")[0] == 404, what="the job to be removed")
        page.locator('#nbsched-sidebar [data-nbsched-job="hello"]').wait_for(
            state="detached", timeout=10_000
        )
        code, _ = lab.api("DELETE", "jobs/prices")
        assert code == 204


def test_failed_run_notifies_with_its_output(lab: LiveServer) -> None:
    _add(lab, "tests.server.jobfuncs:boom", "boom")
    _until(lambda: lab.api("GET", "jobs/boom")[0] == 200, what="the job in the API")
    with lab_page(lab) as page:
        page.locator("#nbsched-status").wait_for(timeout=30_000)
        page.wait_for_function(
            "() => document.querySelector('#nbsched-status')?.innerText.includes('job')"
        )
        code, _ = lab.api("POST", "jobs/boom/run")
        assert code == 202
        toast = page.locator(".Toastify__toast", has_text="boom")
        toast.wait_for(timeout=30_000)
        assert "failed" in toast.inner_text()
        page.wait_for_function(
            "() => document.querySelector('#nbsched-status')?.innerText.includes('1 failed')"
        )
        shot(page, "failure-notification")
        toast.get_by_text("Open output").click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=10_000)
        assert "boom on purpose" in dialog.inner_text()
        shot(page, "failure-output")


def test_schedule_dialog_previews_fire_times(lab: LiveServer) -> None:
    with lab_page(lab) as page:
        page.locator('.jp-DirListing-item[data-file-type="directory"]',
                     has_text="reports").dblclick()
        item = page.locator('.jp-DirListing-item[data-file-type="notebook"]',
                            has_text="daily.ipynb")
        item.click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="Schedule…").click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=10_000)
        assert "reports/daily.ipynb" in dialog.inner_text()
        field = dialog.locator(".nbsched-input-schedule")
        field.fill("every weekday at 9:30")
        dialog.locator(".nbsched-preview-words", has_text="Monday through Friday").wait_for(
            timeout=10_000
        )
        assert dialog.locator(".nbsched-preview-times li").count() == 5
        shot(page, "schedule-dialog")
        field.fill("every blue moon")
        dialog.locator(".nbsched-preview-bad").wait_for(timeout=10_000)
        assert "blue moon" in dialog.locator(".nbsched-preview-bad").inner_text()
        dialog.locator(".jp-Dialog-button", has_text="Cancel").click()
        dialog.wait_for(state="detached", timeout=10_000)

        # the notebook's toolbar offers "Schedule…" for that notebook
        page.evaluate(
            "() => { window.jupyterapp.commands.execute('docmanager:open', "
            "{path: 'reports/daily.ipynb'}); }"
        )
        button = page.locator(".jp-NotebookPanel .nbsched-toolbar-schedule").first
        button.wait_for(timeout=60_000)
        button.click()
        dialog.wait_for(timeout=10_000)
        assert dialog.locator(".nbsched-form-notebook").inner_text() == "reports/daily.ipynb"
        shot(page, "toolbar-schedule")
        dialog.locator(".jp-Dialog-button", has_text="Cancel").click()
    assert all(j["kind"] != "notebook" for j in lab.api("GET", "jobs")[1]["jobs"])


def test_artifacts_folder_is_ignored_by_git() -> None:
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text()
    assert "tests/artifacts/" in ignore
