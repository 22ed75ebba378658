"""What changed between two versions of a job, as short text ("schedule: every 3 seconds →
At 09:30, Monday through Friday"), for the answer to a job that was updated or replaced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..jobs import Job
from .format import fmt_duration

__all__ = ["job_changes"]


def _params(values: Mapping[str, Any] | None) -> str:
    if not values:
        return "none"
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _seconds(value: float | None) -> str:
    return "none" if value is None else fmt_duration(value)


def _schedule(job: Job) -> str:
    try:
        return job.schedule
    except Exception:  # a broken trigger: its type name still tells something
        return type(job.trigger).__name__


#: option -> how to show its value
_OPTIONS: dict[str, Any] = {
    "executor": str,
    "timeout": _seconds,
    "max_instances": str,
    "coalesce": str,
    "misfire_grace_time": _seconds,
    "retries": str,
    "retry_delay": _seconds,
    "paused": str,
}


def job_changes(old: Job, new: Job) -> list[str]:
    """One ``"what: old → new"`` line per thing that differs between ``old`` and ``new``
    (target, schedule, arguments, parameters, options); empty when nothing does."""
    out: list[str] = []
    if old.target != new.target:
        what = "cell" if new.kind == "cell" else "target"
        out.append(f"{what}: {old.target.strip()[:40]!r} → {new.target.strip()[:40]!r}")
    if _schedule(old) != _schedule(new):
        out.append(f"schedule: {_schedule(old)} → {_schedule(new)}")
    if dict(old.kwargs) != dict(new.kwargs):
        out.append(f"parameters: {_params(old.kwargs)} → {_params(new.kwargs)}")
    if (old.parameters or None) != (new.parameters or None):
        out.append(f"parameters: {_params(old.parameters)} → {_params(new.parameters)}")
    for name, show in _OPTIONS.items():
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(f"{name.replace('_', ' ')}: {show(a)} → {show(b)}")
    return out
