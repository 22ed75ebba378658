"""The notebooks in ``notebooks/`` execute headless with nbclient, in an isolated Jupyter
environment, and show what they promise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers.kernels import kernel_manager

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(path: Path, root: Path) -> nbformat.NotebookNode:
    km, env = kernel_manager("ipk7", root, path.name)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        km=km,
        timeout=60,
        resources={"metadata": {"path": str(root / "work")}},
    )
    client.execute(env=env, cleanup_kc=True)  # we made the km, but nbclient must close it
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Any]:
    """Execute each notebook once per module."""
    cache: dict[Path, nbformat.NotebookNode] = {}

    def get(path: Path) -> nbformat.NotebookNode:
        if path not in cache:
            cache[path] = execute(path, tmp_path_factory.mktemp(path.stem))
        return cache[path]

    return get


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_executes(path: Path, executed: Callable[[Path], Any]) -> None:
    nb = executed(path)
    for cell in nb.cells:
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{cell.source!r}: {errors}"


def _plain(cell: nbformat.NotebookNode) -> str:
    return "\n".join(
        o.get("data", {}).get("text/plain", "")
        for o in cell.outputs
        if o.output_type in ("execute_result", "display_data")
    )


def test_quickstart_shows_the_magics_end_to_end(executed: Callable[[Path], Any]) -> None:
    nb = executed(NOTEBOOKS / "quickstart.ipynb")
    by_source = {c.source.splitlines()[0]: c for c in nb.cells if c.cell_type == "code"}

    # (the job may also have fired on its own already: any count will do)
    assert re.search(r"heartbeat \d+ at", _plain(by_source["%schedule run heartbeat"]))
    assert "ACME: " in _plain(by_source["%schedule run fetch_price"])
    listing = by_source["%schedule list"]
    assert "heartbeat" in _plain(listing) and "fetch_price" in _plain(listing)
    assert any("text/html" in o.get("data", {}) for o in listing.outputs)
    assert re.search(r"heartbeat \d+ at", _plain(by_source["%schedule logs heartbeat -n 3"]))
    assert "did you mean 'list'" in json.dumps(by_source["%schedule lsit"].outputs)
    assert "No scheduled jobs" in _plain(by_source["%schedule remove heartbeat"])

    # Output isolation: job output appears only inside the run/log displays, never as a
    # stream in whatever cell was running.
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                assert "heartbeat" not in out.text and "ACME" not in out.text, cell.source
