"""What the REST API does, without HTTP: checks every request, then calls the hosted
:class:`~nbsched.Scheduler` or, for jobs that belong to a kernel, the store they share.

The server's scheduler has no owner (``owner=None``): it runs notebook jobs and importable
``module:function`` jobs made outside a kernel. Jobs of kernels (cells, notebook functions)
are listed and can be paused, resumed and removed here -- the kernel sees the change in its
store within about a second -- but only their kernel can run them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..abc import Trigger
from ..errors import JobLookupError, NbschedError
from ..jobs import Job, Run, RunStatus
from ..scheduler import Scheduler
from ..triggers import parse_trigger
from .serialize import iso, job_json, run_json

__all__ = ["ApiError", "SchedulerService", "PREVIEW_COUNT"]

#: how many fire times the schedule preview shows
PREVIEW_COUNT = 5
_JOB_FIELDS = {"notebook", "schedule", "name", "parameters", "timezone", "timeout"}
_MAX_RUNS = 500


class ApiError(Exception):
    """A request the API refuses: ``status`` (400, 404, 409) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SchedulerService:
    """The operations behind the REST API.

    :param scheduler: the server's scheduler (started by the caller)
    :param root: the Jupyter server's root directory; notebook paths are relative to it
    """

    def __init__(self, scheduler: Scheduler, root: str | Path) -> None:
        self.scheduler = scheduler
        self.root = Path(root).resolve()

    # ------------------------------------------------------------------ jobs

    def jobs(self) -> list[dict[str, Any]]:
        """Every job in the store (every owner's), sorted by name, each with its newest run
        (one store query for all of them)."""
        jobs = self.scheduler.get_jobs(all_owners=True)
        last = self.scheduler.last_runs([job.name for job in jobs])
        return [job_json(job, last.get(job.name), self.root) for job in jobs]

    def job(self, name: str) -> dict[str, Any]:
        """One job. :raises ApiError: 404 for an unknown name"""
        job = self._find(name)
        return job_json(job, self.scheduler.last_runs([name]).get(name), self.root)

    def add_notebook_job(self, body: object) -> dict[str, Any]:
        """Schedule a notebook of the server's root directory (the POST body of
        ``/nbsched/api/jobs``). Everything is checked before anything is stored."""
        if not isinstance(body, Mapping):
            raise ApiError(400, "The body must be a JSON object with 'notebook' and 'schedule'")
        unknown = sorted(set(body) - _JOB_FIELDS)
        if unknown:
            raise ApiError(
                400, f"Unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_JOB_FIELDS))}"
            )
        path = self.notebook_path(body.get("notebook"))
        schedule = body.get("schedule")
        if not isinstance(schedule, str) or not schedule.strip():
            raise ApiError(400, "'schedule' must be a schedule string such as 'every day at 9:00'")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ApiError(400, "'name' must be a non-empty string (or left out)")
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ApiError(400, "'parameters' must be an object of name: value")
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ApiError(400, "'timeout' must be a positive number of seconds (or null)")
        trigger = self._parse(schedule, body.get("timezone"))
        job = self.scheduler.add_job(
            str(path), trigger, name=name, parameters=dict(parameters or {}), timeout=timeout
        )
        return job_json(job, None, self.root)

    def set_paused(self, name: str, paused: object) -> dict[str, Any]:
        """Pause or resume a job (a kernel's job through the store)."""
        if not isinstance(paused, bool):
            raise ApiError(400, "The body must be {\"paused\": true} or {\"paused\": false}")
        if self._served_here(name):
            if paused:
                self.scheduler.pause_job(name)
            else:
                self.scheduler.resume_job(name)
        else:
            job = self._find(name)
            if job.paused != paused:
                nxt = None if paused else job.trigger.next_fire_ts(time.time())
                nrt = None if nxt is None else datetime.fromtimestamp(nxt, self.scheduler.timezone)
                self.scheduler.store.update_job(replace(job, paused=paused, next_run_time=nrt))
        return self.job(name)

    def remove(self, name: str) -> None:
        """Delete a job and its history."""
        if self._served_here(name):
            self.scheduler.remove_job(name)
        else:
            self._find(name)
            try:
                self.scheduler.store.remove_job(name)
            except JobLookupError:
                raise ApiError(404, f"No job named {name!r}") from None

    def start_run(self, name: str) -> str:
        """Start a run now; its id. :raises ApiError: 409 when no scheduler here runs it"""
        if not self._served_here(name):
            job = self._find(name)
            where = f"a kernel of {job.owner!r}" if job.owner else "its own program"
            raise ApiError(
                409,
                f"Job {name!r} runs only in {where}; run it from there "
                "(the server runs notebook jobs and module:function jobs)",
            )
        return self.scheduler.start_run(name)

    # ------------------------------------------------------------------ runs

    def runs(self, job: str | None, limit: object) -> list[dict[str, Any]]:
        """Recent runs, newest first, of one job or of all."""
        try:
            count = int(limit) if limit is not None else 50  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ApiError(400, f"'limit' must be a whole number, got {limit!r}") from None
        if not 1 <= count <= _MAX_RUNS:
            raise ApiError(400, f"'limit' must be between 1 and {_MAX_RUNS}, got {count}")
        if job is not None:
            self._find(job)
        self.scheduler.get_runs(limit=1)  # writes the runs this server has in flight
        runs = self.scheduler.store.get_runs(job, limit=count)
        return [run_json(run, self.root) for run in runs]

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with its output. :raises ApiError: 404"""
        return run_json(self._find_run(run_id), self.root, output=True)

    def run_notebook(self, run_id: str) -> dict[str, Any]:
        """The executed notebook of a notebook run, read from the path its run record holds
        (never a path the caller names): ``name``, ``run_id``, ``job_name``,
        ``last_modified`` and ``content`` (the notebook's JSON). JupyterLab shows it
        read-only, wherever ``output_dir`` is.

        :raises ApiError: 404 for an unknown run, a run without an executed notebook, or a
            notebook that is gone (deleted with old runs, or by hand)
        """
        run = self._find_run(run_id)
        path = run.output_path
        if not path or not path.endswith(".ipynb"):
            raise ApiError(404, f"Run {run_id} has no executed notebook")
        try:
            with open(path, encoding="utf-8") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                content = json.load(f)
        except FileNotFoundError:
            raise ApiError(404, f"The executed notebook of run {run_id} is gone: {path}") from None
        except (OSError, ValueError) as exc:
            raise ApiError(404, f"Cannot read the executed notebook of run {run_id}: {exc}") from None
        return {
            "name": Path(path).name,
            "run_id": run.id,
            "job_name": run.job_name,
            "last_modified": iso(mtime),
            "content": content,
        }

    def cancel(self, run_id: str) -> None:
        """Stop a run in flight (one this server started)."""
        run = self._find_run(run_id)
        if run.status is not RunStatus.running:
            raise ApiError(409, f"Run {run_id} is not running (it {run.status.value})")
        if not self._served_here(run.job_name):
            raise ApiError(409, f"Run {run_id} runs in a kernel; cancel it there")
        try:
            self.scheduler.cancel_run(run_id)
        except JobLookupError:
            raise ApiError(409, f"Run {run_id} is not running") from None

    # ------------------------------------------------------------------ status, preview

    def status(self) -> dict[str, Any]:
        """``healthy``, ``error`` and the schedulers this server knows (its own)."""
        own = self.scheduler.status()
        nxt = own.get("next_run_time")
        entry = {**own, "next_run_time": nxt.isoformat() if nxt is not None else None}
        entry["kind"] = "jupyter-server"
        return {"healthy": own["healthy"], "error": own["error"], "schedulers": [entry]}

    def preview(self, schedule: str | None, timezone: str | None) -> dict[str, Any]:
        """The next fire times of a schedule string, and the schedule in words."""
        if not schedule or not schedule.strip():
            raise ApiError(400, "Give a schedule, e.g. ?schedule=every+day+at+9:00")
        trigger = self._parse(schedule, timezone)
        zone = trigger.timezone or self.scheduler.timezone
        now = time.time()
        anchored = trigger.anchor(datetime.fromtimestamp(now, zone))
        times: list[str] = []
        ts = now
        while len(times) < PREVIEW_COUNT:
            nxt = anchored.next_fire_ts(ts)
            if nxt is None:
                break
            times.append(datetime.fromtimestamp(nxt, zone).isoformat())
            ts = nxt
        if not times:
            raise ApiError(400, f"The schedule {trigger.describe()!r} never fires after now")
        return {
            "schedule": schedule,
            "description": trigger.describe(),
            "timezone": str(zone),
            "next": times,
        }

    # ------------------------------------------------------------------ helpers

    def notebook_path(self, value: object) -> Path:
        """The absolute path of a notebook given relative to the root directory.

        :raises ApiError: 400 for anything that is not a notebook inside the root directory
            (``..``, an absolute path, a symlink that leads out), or that does not exist
        """
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, "'notebook' must be a path such as 'reports/daily.ipynb'")
        rel = value.strip()
        if rel.startswith(("/", "\\")) or Path(rel).is_absolute() or "\x00" in rel:
            raise ApiError(400, f"'notebook' must be relative to the server's root: {rel!r}")
        if not rel.endswith(".ipynb"):
            raise ApiError(400, f"'notebook' must be a .ipynb file, got {rel!r}")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise ApiError(400, f"'notebook' {rel!r} is outside the server's root directory")
        if not path.is_file():
            raise ApiError(400, f"No notebook at {rel!r} (relative to the server's root)")
        return path

    def _parse(self, schedule: str, timezone: object) -> Trigger:
        if timezone is not None and not isinstance(timezone, str):
            raise ApiError(400, "'timezone' must be an IANA name such as 'Europe/Paris'")
        try:
            return parse_trigger(schedule, timezone=timezone or self.scheduler.timezone)
        except NbschedError as exc:
            raise ApiError(400, str(exc)) from None

    def _served_here(self, name: str) -> bool:
        try:
            self.scheduler.get_job(name)
        except JobLookupError:
            return False
        return True

    def _find(self, name: str) -> Job:
        if self._served_here(name):
            return self.scheduler.get_job(name)
        job = self.scheduler.store.get_job(name)
        if job is None:
            raise ApiError(404, f"No job named {name!r}")
        return job

    def _find_run(self, run_id: str) -> Run:
        self.scheduler.get_runs(limit=1)  # writes the runs this server has in flight
        run = self.scheduler.store.get_run(run_id)
        if run is None:
            raise ApiError(404, f"No run with id {run_id!r}")
        return run
