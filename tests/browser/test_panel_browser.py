"""The widget panel in a real JupyterLab, clicked in a real browser (Debian chromium).

The kernel's store is a SQLite file this test chose (``NBSCHED_DB_URL``), so the effect of a
click is checked where it lands, through nbsched's own store API, not through the page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsched.stores.sqlalchemy import SQLAlchemyJobStore

from ._lab import ARTIFACTS, LabServer, browser_page, open_notebook, run_cells, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JOB = "browser_tick"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabServer, str]]:
    db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    pythonpath = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {"NBSCHED_DB_URL": db_url, "PYTHONPATH": ":".join(pythonpath)}
    with LabServer(tmp_path, env=env) as server:
        yield server, db_url


def _paused(db_url: str, name: str) -> bool | None:
    store = SQLAlchemyJobStore(db_url)
    store.open()
    try:
        job = store.get_job(name)
        return None if job is None else job.paused
    finally:
        store.close()


def test_pause_from_the_panel(lab: tuple[LabServer, str]) -> None:
    server, db_url = lab
    server.write_notebook("panel.ipynb", [
        "%load_ext nbsched",
        f"%%schedule --every 30s --name {JOB}\nprint('tick')",
        "def report():\n    print('report')\n%schedule add report --every 1h --name hourly_report",
        "def load():\n    raise ValueError('source offline')\n%schedule add load --every 1h",
        "%schedule panel",
    ])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        open_notebook(page, server, "panel.ipynb")
        run_cells(page, 5)
        row = page.locator(".nbsched-panel .nbsched-job", has_text=JOB)
        try:
            row.wait_for(timeout=30_000)
        except Exception as exc:
            page.screenshot(path=str(ARTIFACTS / "panel-failed.png"), full_page=True)
            raise AssertionError(
                "no panel row for the job:\n" + server.log_text()[-3000:]
            ) from exc
        assert _paused(db_url, JOB) is False

        row.get_by_role("button", name="Pause").click()
        wait_for(lambda: _paused(db_url, JOB), timeout=20, what="the job paused in the store")
        # The panel shows it too: the button flips to Resume and the state badge says paused.
        row.get_by_role("button", name="Resume").wait_for(timeout=10_000)
        assert "paused" in row.inner_text()
        assert _paused(db_url, "hourly_report") is False  # only the clicked job changed
        panel = page.locator(".nbsched-panel")
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "panel.png"), full_page=True)

        # Run now: the kernel stays free, the status line reports the outcome, and the
        # History tab shows the run and, on request, what it printed.
        other = page.locator(".nbsched-panel .nbsched-job", has_text="hourly_report")
        other.get_by_role("button", name="Run now").click()
        try:
            panel.locator(".nbsched-status", has_text="Ran hourly_report: succeeded").wait_for(
                timeout=20_000
            )
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "panel-failed.png"), full_page=True)
            raise
        panel.get_by_role("tab", name="History").click()
        run_row = panel.locator(".nbsched-run", has_text="hourly_report")
        run_row.get_by_role("button", name="Show").click()
        panel.locator(".nbsched-detail pre", has_text="report").wait_for(timeout=10_000)

        # A failing job: its row says so, and its run's error is one click away.
        failing = page.locator(".nbsched-panel .nbsched-job", has_text="load")
        failing.get_by_role("button", name="Run now").click()
        panel.locator(".nbsched-status", has_text="Ran load: failed").wait_for(timeout=20_000)
        failing.locator(".nbsched-badge", has_text="failing").wait_for(timeout=10_000)
        panel.locator(".nbsched-run", has_text="load").get_by_role("button", name="Show").click()
        panel.locator(".nbsched-detail pre", has_text="ValueError: source offline").wait_for(
            timeout=10_000
        )
        panel.screenshot(path=str(ARTIFACTS / "panel-history.png"))
        panel.get_by_role("tab", name="Timeline").click()
        panel.locator("svg.nbsched-timeline").wait_for(timeout=10_000)
        panel.screenshot(path=str(ARTIFACTS / "panel-timeline.png"))

        # Remove asks first; confirmed, the job is gone from the store and the table.
        row.get_by_role("button", name="Remove").click()
        confirm = panel.locator(".nbsched-confirm")
        confirm.get_by_role("button", name="Yes, remove").click()
        wait_for(lambda: _paused(db_url, JOB) is None, timeout=20, what="the job removed")
        row.wait_for(state="detached", timeout=10_000)
