"""A notebook run's executed notebook opens in JupyterLab from the sidebar's history, though
the default output folder (``<jupyter data dir>/nbsched/runs``) is outside the server's root:
real JupyterLab with this tree's extension, Debian chromium via Playwright. The screenshot
goes to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.wait import wait_for
from tests.server.browser import lab_page, shot
from tests.server.live import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("lab"), lab=True) as server:
        yield server


def test_open_an_executed_notebook_outside_the_root(lab: LiveServer) -> None:
    code, _ = lab.api("POST", "jobs", {"notebook": "reports/daily.ipynb",
                                       "schedule": "every 1h", "name": "daily"})
    assert code == 201
    code, reply = lab.api("POST", "jobs/daily/run")
    assert code == 202
    run_id = reply["run_id"]
    wait_for(lambda: lab.api("GET", f"runs/{run_id}")[1]["status"] != "running",
             timeout=120, what="the notebook run to finish")
    run = lab.api("GET", f"runs/{run_id}")[1]
    assert run["status"] == "succeeded", run
    # written to the default folder, which JupyterLab's file browser cannot reach
    assert run["output_lab_path"] is None
    assert not Path(run["output_path"]).resolve().is_relative_to(lab.root.resolve())

    with lab_page(lab) as page:
        page.evaluate("() => window.jupyterapp.commands.execute('nbsched:open')")
        job = page.locator('#nbsched-sidebar [data-nbsched-job="daily"]')
        job.wait_for(timeout=30_000)
        job.locator('[data-nbsched-action="history"]').click()
        link = job.locator(f'[data-nbsched-run="{run_id}"] [data-nbsched-action="open-notebook"]')
        link.wait_for(timeout=10_000)
        link.click()
        panel = page.locator(".jp-NotebookPanel").last
        panel.locator(".jp-OutputArea-output", has_text="report ran").wait_for(timeout=30_000)
        title = page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").last
        assert title.inner_text() == Path(run["output_path"]).name
        # JupyterLab's own read-only label: the contents model says it cannot be written
        panel.locator(".jp-ToolbarLabelComponent", has_text="notebook is read-only").wait_for(
            timeout=10_000
        )
        # a notebook to read, not to run: once its session is settled, it has no kernel and
        # none was started for it
        no_kernel = page.evaluate(
            """async () => {
                const panel = window.jupyterapp.shell.currentWidget;
                await panel.sessionContext.ready;
                return panel.sessionContext.hasNoKernel;
            }"""
        )
        assert no_kernel is True
        panel.locator(".jp-Toolbar-kernelName", has_text="No Kernel").wait_for(timeout=10_000)
        assert lab.jupyter_api("kernels") == []
        shot(page, "run-notebook-open")
