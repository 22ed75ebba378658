"""The panel in a real kernel (jupyter_client): it keeps updating while a cell runs, and
``%schedule panel`` shows the same widgets again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.kernels import KernelHarness, Kernels

pytestmark = pytest.mark.slow


def _updates_during(harness: KernelHarness, code: str) -> list[dict[str, Any]]:
    """The widget state updates published while ``code`` was running."""
    start = len(harness.iopub)
    res = harness.run(code)
    msg_id = res.msgs[0]["parent_header"]["msg_id"]
    msgs = harness.iopub[start:]
    busy = next(i for i, m in enumerate(msgs) if m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == msg_id
                and m["content"]["execution_state"] == "busy")
    idle = next(i for i, m in enumerate(msgs) if m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == msg_id
                and m["content"]["execution_state"] == "idle")
    return [
        m["content"]["data"] for m in msgs[busy:idle]
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]


def test_panel_moves_while_a_cell_runs(kernel_factory: Kernels) -> None:
    k = kernel_factory.start("ipk7", notebook="panel.ipynb")
    k.run("%load_ext nbsched")
    k.run("%%schedule --every 1s --name ticker\nprint('tick')")
    shown = k.run("%schedule panel")
    views = [m["content"]["data"] for m in shown.msgs if m["msg_type"] == "execute_result"]
    assert views and "application/vnd.jupyter.widget-view+json" in views[0]
    assert "ticker" in views[0]["text/html"] and "ticker" in views[0]["text/plain"]
    model_id = views[0]["application/vnd.jupyter.widget-view+json"]["model_id"]

    updates = _updates_during(k, "import time\ntime.sleep(3.5)")
    texts = " ".join(str(u["state"]) for u in updates)
    # The job ran (and the countdowns moved) while the kernel was busy with the sleep.
    assert "succeeded" in texts, updates
    # Throttled: at most a couple of refreshes a second, each a few widget updates.
    assert len(updates) < 3.5 * 2 * 12, len(updates)

    again = k.run("%schedule panel")
    views = [m["content"]["data"] for m in again.msgs if m["msg_type"] == "execute_result"]
    assert views[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == model_id
    assert k.eval("[t.name for t in __import__('threading').enumerate()"
                  " if t.name == 'nbsched-panel']") == ["nbsched-panel"]
    k.run("%unload_ext nbsched")  # the extension's unload stops the panel's thread
    assert k.eval("[t.name for t in __import__('threading').enumerate()"
                  " if t.name == 'nbsched-panel' and t.is_alive()]") == []
