"""The output notebook: how it is prepared, marked and saved.

What a reader of an executed notebook finds (papermill's conventions, under nbsched's names):

* notebook metadata ``nbsched``: ``status`` (``running``, then how the run ended),
  ``parameters``, ``start_time``, ``end_time``, ``duration``, ``error``;
* cell metadata ``nbsched.status``: ``pending``, ``running``, ``completed``, or how the run
  ended in that cell (``failed``, ``timed_out``, ``cancelled``, ``crashed``);
* when a run does not succeed: a red banner cell at the top ("An exception was encountered at
  In [N]", or "The run timed out / was cancelled in In [N]") linking to an anchor cell just
  before the cell where it happened. Both are markdown cells tagged ``nbsched-error-cell``
  and are stripped again when a notebook is run a second time.

Saves are atomic (a temporary file in the same folder, then a rename), so a reader never sees
half a notebook, and a run killed in the middle leaves the last complete save.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["ERROR_TAG", "load", "mark_end", "save", "executable"]

#: nbformat's functions, untyped
_nbf: Any = nbformat

ERROR_TAG = "nbsched-error-cell"
_ANCHOR = "nbsched-error-cell"
_STYLE = (
    'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; '
    'font-size:2em;"'
)
_HEADLINES = {
    "failed": "An exception was encountered at",
    "timed_out": "The run timed out in",
    "cancelled": "The run was cancelled in",
    "crashed": "The kernel died in",
}


def load(path: Path) -> nbformat.NotebookNode:
    """Read ``path`` as the source of a run: earlier marks, outputs and execution counts go
    (an executed notebook can be run again)."""
    nb: nbformat.NotebookNode = _nbf.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if ERROR_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("nbsched", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata["nbsched"] = {"status": "pending"}
    nb.metadata.pop("nbsched", None)
    return nb


def executable(cell: Any) -> bool:
    """Whether nbclient sends ``cell`` to the kernel (what "cells done / total" counts)."""
    return bool(
        cell.cell_type == "code"
        and cell.source.strip()
        and "skip-execution" not in cell.metadata.get("tags", [])
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def mark_end(
    nb: nbformat.NotebookNode, status: str, cell_index: int | None, error: str | None
) -> None:
    """Record how the run ended; for a run that did not succeed, mark the cell it ended in
    (``cell_index``; ``None`` when it ended before or between cells)."""
    meta = nb.metadata.setdefault("nbsched", {})
    meta["status"] = status
    meta["end_time"] = now_iso()
    meta["error"] = error
    try:
        start = datetime.fromisoformat(meta["start_time"])
        meta["duration"] = (datetime.fromisoformat(meta["end_time"]) - start).total_seconds()
    except (KeyError, TypeError, ValueError):
        meta["duration"] = None
    for cell in nb.cells:
        if cell.metadata.get("nbsched", {}).get("status") == "running":
            cell.metadata["nbsched"]["status"] = status if status != "succeeded" else "completed"
    if status == "succeeded" or cell_index is None or not 0 <= cell_index < len(nb.cells):
        return
    cell = nb.cells[cell_index]
    cell.metadata.setdefault("nbsched", {})["status"] = status
    label = f"In [{cell.execution_count}]" if cell.get("execution_count") else "this cell"
    banner = _nbf.v4.new_markdown_cell(
        f'<span {_STYLE}>{_HEADLINES.get(status, "The run stopped in")} '
        f"'<a href=\"#{_ANCHOR}\">{label}</a>'.</span>"
    )
    anchor = _nbf.v4.new_markdown_cell(
        f'<span id="{_ANCHOR}" {_STYLE}>Execution using nbsched stopped here '
        f"({status.replace('_', ' ')}):</span>"
    )
    for mark in (banner, anchor):
        mark.metadata["tags"] = [ERROR_TAG]
    nb.cells.insert(cell_index, anchor)
    nb.cells.insert(0, banner)


def save(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` atomically (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            _nbf.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
