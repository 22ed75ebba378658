"""What the subcommands share: exit codes, the one-line error, the store and the JSON forms.

The subcommands that manage jobs (``list``, ``runs``, ``logs``, ``pause``, ``resume``,
``remove``) act on *every* owner's jobs: a job made in a notebook can be paused from a shell.
A :class:`~nbsched.Scheduler` manages only its own owner's jobs, so these commands work on
the store itself, through the :class:`~nbsched.abc.JobStore` contract every scheduler uses.
The schedulers that serve a job see such a change within about a second, as they see any
other process's writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..abc import Trigger
from ..errors import JobLookupError
from ..jobs import Job, Run
from ..kernel.config import MEMORY_URL, resolve_db_url
from ..stores.sqlalchemy import SQLAlchemyJobStore

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CliError",
    "store_url",
    "opened_store",
    "find_job",
    "find_run",
    "job_json",
    "run_json",
]

EXIT_OK = 0
#: a missing notebook, an unknown job or run, a failed run, a store that cannot go on
EXIT_FAILURE = 1
#: bad arguments (argparse's own code for them)
EXIT_USAGE = 2

#: the Job.kind values under the names the REST API and ``--json`` use
_KINDS = {"callable": "function", "cell": "cell", "notebook": "notebook"}


class CliError(Exception):
    """A failure the command reports in one line on stderr, exiting with ``code``.

    :param message: the line (without the ``nbsched <command>: error:`` prefix)
    :param code: the exit status
    """

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def store_url(db: str | None) -> str:
    """The store to use: ``--db`` when given, else the kernels' store (``$NBSCHED_DB_URL``,
    else the SQLite file in the Jupyter data directory).

    :raises CliError: the URL names an in-memory store, which no other process can see
    """
    url = db.strip() if db and db.strip() else resolve_db_url()
    if url is None or url == MEMORY_URL:
        raise CliError(
            f"the store {db or MEMORY_URL!r} keeps jobs inside one process only; pass --db with "
            "a database URL such as sqlite:////path/to/nbsched.db",
            EXIT_USAGE,
        )
    return url


@contextlib.contextmanager
def opened_store(db: str | None) -> Iterator[SQLAlchemyJobStore]:
    """The store of ``--db`` (see :func:`store_url`), open for the duration of the block.

    :raises InvalidArgumentError: the URL is not one SQLAlchemy understands
    :raises StoreError: the database cannot be reached
    """
    store = SQLAlchemyJobStore(store_url(db))
    try:
        store.open()
        yield store
    finally:
        store.close()


def find_job(store: SQLAlchemyJobStore, name: str) -> Job:
    """The job named ``name``, of any owner.

    :raises JobLookupError: there is none (the message suggests a close name)
    """
    job = store.get_job(name)
    if job is None:
        raise JobLookupError(name, [j.name for j in store.get_jobs()])
    return job


def find_run(store: SQLAlchemyJobStore, job: Job, run_id: str | None) -> Run | None:
    """The run ``run_id`` of ``job`` (its newest run when ``run_id`` is ``None``); ``None``
    when the job has no runs yet.

    :raises CliError: ``run_id`` is not one of the job's kept runs
    """
    if run_id is None:
        runs = store.get_runs(job.name, limit=1)
        return runs[0] if runs else None
    # The store keeps at most `retention` runs per job, so this read is bounded.
    for run in store.get_runs(job.name, limit=max(store.retention, 1)):
        if run.id == run_id:
            return run
    raise CliError(
        f"job {job.name!r} has no run {run_id!r} (see `nbsched runs {job.name}` for its runs)"
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_json(run: Run) -> dict[str, Any]:
    """A run as the REST API's RUN object."""
    return {
        "id": run.id,
        "job_name": run.job_name,
        "status": run.status.value,
        "scheduled_for": _iso(run.scheduled_for),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration": run.duration,
        "error": run.error,
        "output_path": run.output_path,
    }


def job_json(job: Job, last_run: Run | None) -> dict[str, Any]:
    """A job as the REST API's JOB object (times in ISO 8601, UTC)."""
    zone = job.trigger.timezone
    nxt = None if job.paused or job.next_ts is None else datetime.fromtimestamp(job.next_ts, UTC)
    return {
        "name": job.name,
        "owner": job.owner,
        "kind": _KINDS.get(job.kind, job.kind),
        "target": job.target,
        "schedule": schedule_spec(job.trigger),
        "description": _describe(job.trigger),
        "timezone": None if zone is None else getattr(zone, "key", str(zone)),
        "next_run_time": _iso(nxt),
        "paused": job.paused,
        "unbound": job.unbound,
        "executor": job.executor,
        "last_run": None if last_run is None else run_json(last_run),
    }


def _describe(trigger: Trigger) -> str:
    try:
        return trigger.describe()
    except Exception as exc:  # a trigger that cannot be read must not hide the other jobs
        return f"(cannot describe schedule: {exc})"


def schedule_spec(trigger: Trigger) -> str:
    """The schedule as a string :func:`~nbsched.triggers.parse_trigger` reads back: the cron
    expression, ``"every 1h30m"``, ``"at 2026-12-01T09:00:00+01:00"``; for other triggers,
    the schedule in words."""
    try:
        state = trigger.to_state()
    except Exception:
        return _describe(trigger)
    kind = state.get("type")
    if kind == "cron" and state.get("expr"):
        return str(state["expr"])
    if kind == "interval" and state.get("interval"):
        return f"every {_duration(float(state['interval']))}"
    if kind == "date" and state.get("run_date"):
        return f"at {state['run_date']}"
    if kind == "date" and state.get("delay") is not None:
        return f"in {_duration(float(state['delay']))}"
    return _describe(trigger)


def _duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``, ``10`` -> ``"10s"``, ``0.5`` -> ``"0.5s"`` (the spec syntax)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
