"""Jobs of other notebooks: read them, pause, resume or remove them, or adopt them.

A kernel's scheduler holds only its own notebook's jobs; the others are in the shared store.
Changes to them go to the store through the :class:`~nbsched.abc.JobStore` contract, and the
owning kernel's scheduler picks them up from there the way it picks up any change another
process makes (within about a second). Adopting a job moves it to this notebook: its owner
changes in the store, and this scheduler reads it in (binding it if its function or cell
exists here).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import JobLookupError

if TYPE_CHECKING:
    from ..jobs import Job
    from ..scheduler import Scheduler

__all__ = ["Target", "find", "owner_label", "pause", "resume", "remove", "adopt"]


class Target:
    """A job named by the user: this notebook's own (``foreign`` is False) or another's."""

    __slots__ = ("job", "foreign")

    def __init__(self, job: Job, foreign: bool) -> None:
        self.job = job
        self.foreign = foreign


def find(sched: Scheduler, name: str) -> Target:
    """The job ``name``, this notebook's or any other's.

    :raises JobLookupError: no job of that name in the store
    """
    try:
        return Target(sched.get_job(name), False)
    except JobLookupError:
        other = sched.store.get_job(name)
        if other is None:
            raise
        return Target(other, True)


def owner_label(job: Job) -> str:
    """``"notebook other.ipynb"`` (or ``"another program"`` for a job without an owner)."""
    return f"notebook {job.owner}" if job.owner else "another program"


def _stored(sched: Scheduler, name: str) -> Job:
    job = sched.store.get_job(name)
    if job is None:  # removed meanwhile, by its own kernel say
        raise JobLookupError(name)
    return job


def pause(sched: Scheduler, job: Job) -> Job:
    """Pause another notebook's job in the store."""
    sched.store.update_job(replace(job, paused=True, next_run_time=None))
    return _stored(sched, job.name)


def resume(sched: Scheduler, job: Job, now: float) -> Job:
    """Resume another notebook's job in the store, from its next fire time after ``now``."""
    nxt = job.trigger.next_fire_ts(now)
    nrt = None if nxt is None else datetime.fromtimestamp(nxt, sched.timezone)
    sched.store.update_job(replace(job, paused=False, next_run_time=nrt))
    return _stored(sched, job.name)


def remove(sched: Scheduler, job: Job) -> None:
    """Remove another notebook's job and its run history from the store."""
    sched.store.remove_job(job.name)


def adopt(sched: Scheduler, job: Job) -> Job:
    """Make ``job`` this scheduler's: its owner changes in the store, and the scheduler reads
    it in (its former kernel drops it at its next look at the store)."""
    sched.store.update_job(replace(job, owner=sched.owner))
    sched.refresh_from_store()
    return sched.get_job(job.name)
