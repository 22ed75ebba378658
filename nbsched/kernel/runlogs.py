"""What ``%schedule logs`` and ``show`` list of a job's runs: this scheduler's records (with
the ones not written yet) for its own jobs, the store's for other notebooks' jobs, and the
output of runs still in flight so far.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from .. import display as _display
from ..abc import ALL_OWNERS
from . import owners

if TYPE_CHECKING:
    from ..jobs import Job, Run
    from ..scheduler import Scheduler

__all__ = ["logs", "runs_of"]


def runs_of(sched: Scheduler, job: Job, limit: int) -> list[Run]:
    """The newest runs of ``job``: through ``sched`` for its own jobs (it may hold runs not
    written yet), from the store for other notebooks' jobs."""
    if job.owner == sched.owner:
        return sched.get_runs(job.name, limit=limit)
    return sched.store.get_runs(job.name, owner=ALL_OWNERS, limit=limit)


def logs(
    sched: Scheduler, name: str | None, limit: int, now: float, tz: tzinfo | None
) -> _display.RunLog:
    """The newest ``limit`` runs of job ``name`` (any notebook's; ``None``: of every job of
    this scheduler), with what the runs in flight here printed so far.

    :raises JobLookupError: no job ``name`` in the store
    """
    if name is None:
        runs, caption = sched.get_runs(None, limit=limit), "Latest runs"
    else:
        job = owners.find(sched, name).job
        runs = runs_of(sched, job, limit)
        whose = f" (a job of {owners.owner_label(job)})" if job.owner != sched.owner else ""
        caption = f"Latest runs of {name!r}{whose}"
    runs = _display.with_output_so_far(runs, sched.run_output)
    return _display.RunLog(runs, now, tz, caption=caption)
