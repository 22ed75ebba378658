"""Runs still in flight, shown with what they printed so far.

A run's record gets its output only once the run ends; while it runs, the scheduler that
runs it can read what it printed so far (``Scheduler.run_output``). Only public core modules
are imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ..jobs import Run, RunStatus

__all__ = ["with_output_so_far"]


def with_output_so_far(runs: Sequence[Run], output_of: Callable[[str], str | None]) -> list[Run]:
    """``runs``, each one still ``running`` with the output ``output_of(run id)`` gives for it
    (``Scheduler.run_output``: ``None`` for a run it does not run, left as it is). Asked once
    per running run: a listing of runs asks for a few."""
    shown = []
    for run in runs:
        if run.status is RunStatus.running:
            so_far = output_of(run.id)
            if so_far:
                run = dataclasses.replace(run, output=so_far)
        shown.append(run)
    return shown
