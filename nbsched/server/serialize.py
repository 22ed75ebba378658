"""The JSON forms of jobs, runs and schedule previews that the REST API answers with.

One place for them, so that the handlers, the event stream and the OpenAPI description agree
(``openapi.json`` in this package describes exactly these shapes).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from ..abc import Trigger
from ..jobs import Job, Run

__all__ = ["job_json", "run_json", "schedule_text", "iso"]

# The REST API says "function" where the core says "callable": users schedule functions.
_KINDS = {"callable": "function", "cell": "cell", "notebook": "notebook"}


def iso(ts: float | None, tz: tzinfo | None = None) -> str | None:
    """ISO 8601 with offset (UTC unless ``tz``), or ``None``."""
    return None if ts is None else datetime.fromtimestamp(ts, tz or UTC).isoformat()


def schedule_text(trigger: Trigger) -> str:
    """The schedule as a user could type it again (a cron expression, ``every 10s``, an
    ISO date); the words of :meth:`Trigger.describe` for the forms that have no such text."""
    state = trigger.to_state()
    kind = state.get("type")
    if kind == "cron" and isinstance(state.get("expr"), str):
        return str(state["expr"])
    if kind == "interval" and isinstance(state.get("interval"), int | float):
        return f"every {state['interval']:g}s"
    if kind == "date" and state.get("run_date"):
        return f"at {state['run_date']}"
    return trigger.describe()


def _describe(trigger: Trigger) -> str:
    try:
        return trigger.describe()
    except Exception as exc:  # a job whose stored trigger is broken is still listed
        return f"(cannot describe the schedule: {exc})"


def _zone(trigger: Trigger) -> str | None:
    zone = trigger.timezone
    return None if zone is None else str(zone)


def lab_path(path: str | None, root: Path) -> str | None:
    """``path`` relative to the server's root directory (what JupyterLab opens), or
    ``None`` when it is not inside it."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return None


def run_json(run: Run, root: Path, *, output: bool = False) -> dict[str, Any]:
    """RUN: ``id, job_name, status, scheduled_for, started_at, finished_at, duration, error,
    output_path`` (+ ``output`` when asked, ``output_lab_path`` for the link in the lab)."""
    data: dict[str, Any] = {
        "id": run.id,
        "job_name": run.job_name,
        "status": run.status.value,
        "scheduled_for": iso(run.scheduled_ts),
        "started_at": iso(run.started_ts),
        "finished_at": iso(run.finished_ts),
        "duration": run.duration,
        "error": run.error,
        "output_path": run.output_path,
        "output_lab_path": lab_path(run.output_path, root),
        "attempt": run.attempt,
    }
    if output:
        data["output"] = run.output
    return data


def job_json(job: Job, last_run: Run | None, root: Path) -> dict[str, Any]:
    """JOB: ``name, owner, kind, target, schedule, description, timezone, next_run_time,
    paused, unbound, executor, last_run`` (+ ``lab_path``: the notebook to open, if any)."""
    return {
        "name": job.name,
        "owner": job.owner,
        "kind": _KINDS.get(job.kind, job.kind),
        "target": job.target,
        "schedule": schedule_text(job.trigger) if not _broken(job.trigger) else "",
        "description": _describe(job.trigger),
        "timezone": _zone(job.trigger),
        "next_run_time": iso(job.next_ts, job.next_run_time.tzinfo if job.next_run_time else None),
        "paused": job.paused,
        "unbound": job.unbound,
        "executor": job.executor,
        "parameters": dict(job.parameters) if job.parameters else {},
        "timeout": job.timeout,
        "lab_path": _notebook_of(job, root),
        "last_run": None if last_run is None else run_json(last_run, root),
    }


def _notebook_of(job: Job, root: Path) -> str | None:
    """The notebook to open for a job, relative to the root: a notebook job's notebook, or
    the notebook whose kernel made the job (kernels name it relative to the root already)."""
    if job.kind == "notebook":
        return lab_path(job.target, root)
    owner = job.owner
    if owner and owner.endswith(".ipynb"):
        return lab_path(owner, root) if Path(owner).is_absolute() else owner
    return None


def _broken(trigger: Trigger) -> bool:
    try:
        trigger.to_state()
    except Exception:
        return True
    return False
