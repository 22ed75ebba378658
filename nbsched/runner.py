"""Run whole notebooks: papermill-style parameters, nbclient in a fresh kernel, and an executed
notebook saved as the run goes.

The scheduler runs notebook jobs through :func:`run_notebook` (its ``"notebook"`` executor),
and so does ``nbsched run``. What the output notebook records (statuses, the banner of a run
that failed) is described in ``nbsched/_notebook/document.py``.
"""

from __future__ import annotations

import ast
import json
import keyword
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from ._notebook import document as _doc
from ._notebook.params import check_parameters, inject_parameters
from ._notebook.session import RUN_ENV, NotebookSession
from .errors import InvalidArgumentError, TargetLookupError
from .jobs import RunStatus

__all__ = [
    "NotebookResult",
    "OUTPUT_DIR_ENV",
    "RUN_ENV",
    "default_output_dir",
    "default_output_path",
    "parse_parameter",
    "run_notebook",
    "validate_parameters",
]

#: environment variable naming the folder executed notebooks go to (see default_output_dir)
OUTPUT_DIR_ENV = "NBSCHED_OUTPUT_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"key=value"`` (the argument of ``-p``) as ``(key, value)``: the value is a Python
    literal where it is one that can be stored (``5``, ``2.5``, ``True``, ``None``,
    ``[1, 2]``, ``"quoted"``), else the text itself (``day=mon`` gives ``"mon"``).

    :raises InvalidArgumentError: not ``KEY=VALUE`` with KEY a Python name
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier() or keyword.iskeyword(key):
        raise InvalidArgumentError(
            f"Expected KEY=VALUE with KEY a Python variable name, got {text!r}"
        )
    try:
        parsed = ast.literal_eval(value.strip())
        json.dumps(parsed, allow_nan=False)  # stores as JSON with the job
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return key, value
    return key, parsed


def validate_parameters(parameters: Mapping[str, Any]) -> None:
    """Check that ``parameters`` can be injected: Python names, literal values.

    :raises InvalidArgumentError: the first bad one, named
    """
    check_parameters(parameters)


def default_output_dir() -> Path:
    """Where executed notebooks go when nothing else is said: ``$NBSCHED_OUTPUT_DIR``, else
    ``<jupyter data dir>/nbsched/runs``."""
    env = os.environ.get(OUTPUT_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "nbsched" / "runs"


def default_output_path(job_name: str, when: datetime, output_dir: str | Path) -> Path:
    """The executed notebook of a run of ``job_name`` at ``when``:
    ``<output_dir>/<job>/<job>-20261207T120000Z.ipynb`` (UTC; characters a file name should
    not have become ``_``)."""
    safe = _UNSAFE.sub("_", job_name).strip("._") or "job"
    if when.tzinfo is None:
        raise InvalidArgumentError("default_output_path needs an aware datetime")
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(output_dir) / safe / f"{safe}-{stamp}.ipynb"


@dataclass(frozen=True)
class NotebookResult:
    """How a notebook run ended.

    :param status: ``succeeded``, ``failed``, ``timed_out``, ``cancelled`` or ``crashed``
        (the kernel died)
    :param output_path: the executed notebook (written whatever the status)
    :param output: the text the cells printed (stdout and stderr, in order)
    :param error: what went wrong, ``None`` on success
    :param cells_done: code cells that ran to the end
    :param cells_total: code cells in the notebook (with the injected parameters)
    """

    status: RunStatus
    output_path: Path
    output: str
    error: str | None
    cells_done: int
    cells_total: int


def run_notebook(
    path: str | Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_path: str | Path | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_output: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    start_at: float | None = None,
    on_start: Callable[[], str | None] | None = None,
) -> NotebookResult:
    """Run the notebook at ``path`` once, now, in a fresh kernel, and wait for the end.

    The kernel is the notebook's kernelspec (or ``kernel_name``), its working directory the
    notebook's folder, and ``NBSCHED_RUN=1`` is in its environment. The notebook is read when
    the run starts. Safe to call from any thread, including a cell of an IPython kernel.

    :param parameters: injected papermill-style after the cell tagged ``parameters``
    :param output_path: where the executed notebook goes (default: under
        :func:`default_output_dir`, see :func:`default_output_path`)
    :param timeout: seconds for the whole run; then the kernel and everything it started are
        killed and the run is ``timed_out``
    :param cell_timeout: the same, per cell
    :param on_progress: ``(cells_done, cells_total)``, at the start and after each code cell
    :param on_output: each piece of text a cell prints, as it comes
    :param cancel: set it (from any thread) to stop the run: ``cancelled``
    :param start_at: POSIX time the first cell waits for (the kernel starts at once)
    :param on_start: called right before the first cell; a string it returns cancels the run
        with that reason
    :raises TargetLookupError: no notebook at ``path``
    :raises InvalidArgumentError: the file is not a notebook, or a parameter is bad
    """
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise TargetLookupError(f"No notebook at {str(source)!r}")
    if parameters:
        validate_parameters(parameters)
    for name, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if value is not None and not value > 0:
            raise InvalidArgumentError(
                f"{name} must be a positive number of seconds, got {value!r}"
            )
    try:
        nb = _doc.load(source)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        raise InvalidArgumentError(f"{str(source)!r} is not a readable notebook: {exc}") from None
    if parameters:
        inject_parameters(nb, parameters)
    nb.metadata.setdefault("nbsched", {})["parameters"] = dict(parameters or {})
    if output_path is None:
        output_path = default_output_path(source.stem, datetime.now(UTC), default_output_dir())
    out = Path(output_path).expanduser().resolve()
    run = NotebookSession(
        nb, source.parent, out, kernel_name=kernel_name, timeout=timeout,
        cell_timeout=cell_timeout, on_progress=on_progress, on_output=on_output,
        cancel=cancel, start_at=start_at, on_start=on_start,
    )
    status, error, ended_in = run.run()
    _doc.mark_end(nb, status, ended_in, error)
    _doc.save(nb, out)  # before anyone learns how the run ended
    return NotebookResult(
        status=RunStatus(status),
        output_path=out,
        output="".join(run.output),
        error=error,
        cells_done=run.done,
        cells_total=run.total,
    )
