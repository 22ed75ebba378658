"""Jobs and runs <-> plain rows (dicts of JSON text, pickles and floats).

Shared by the persistent stores; no SQL here. Two rules shape this module:

* **writing** checks everything up front (pickling, JSON), so a job that cannot be stored is
  refused with a typed error before the database is touched;
* **reading never fails and never loses data**: a row whose trigger, options or arguments cannot
  be restored still becomes a :class:`~nbsched.jobs.Job`, with a
  :class:`~nbsched.triggers.registry.BrokenTrigger` (which never fires) saying why, and with the original
  bytes/state kept so that writing the job back stores them unchanged. APScheduler deletes rows
  it cannot restore (its issue #341); we never do.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..abc import Trigger
from ..errors import NotPicklableError
from ..jobs import Job, JobOptions, Run, RunStatus
from ..triggers.registry import BrokenTrigger, trigger_from_state

__all__ = [
    "JOB_STATE_VERSION",
    "UnreadableArgs",
    "UnreadableKwargs",
    "job_to_row",
    "row_to_job",
    "run_to_row",
    "row_to_run",
]

#: version of the stored job state (the ``version`` column); bump on incompatible changes
JOB_STATE_VERSION = 1
_PICKLE_PROTOCOL = 5
#: key of the state a BrokenTrigger gets when the stored trigger text is not a JSON object
_RAW_KEY = "_unparsed"
#: Job fields kept in the ``options`` JSON column (with ``parameters``)
_OPTIONS = ("timeout", "max_instances", "coalesce", "misfire_grace_time", "retries", "retry_delay")


class UnreadableArgs(tuple):  # type: ignore[type-arg]
    """Stands in for stored positional arguments that could not be unpickled (their class is
    not importable here, for instance). It is an empty tuple that keeps the stored bytes:
    writing the job back stores ``data`` unchanged. The job's trigger is then a
    ``BrokenTrigger``, so it never fires with the wrong arguments.

    :ivar data: the pickled arguments as stored
    :ivar reason: why they could not be restored
    """

    data: bytes
    reason: str

    def __new__(cls, data: bytes, reason: str) -> UnreadableArgs:
        self = super().__new__(cls)
        self.data = data
        self.reason = reason
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle keep data and reason
        return (UnreadableArgs, (self.data, self.reason))

    def __repr__(self) -> str:
        return f"UnreadableArgs(<{len(self.data)} bytes>, reason={self.reason!r})"


class UnreadableKwargs(dict):  # type: ignore[type-arg]
    """Like :class:`UnreadableArgs`, for keyword arguments (an empty dict keeping ``data``)."""

    def __init__(self, data: bytes, reason: str) -> None:
        super().__init__()
        self.data = data
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle keep data and reason
        return (UnreadableKwargs, (self.data, self.reason))

    def __repr__(self) -> str:
        return f"UnreadableKwargs(<{len(self.data)} bytes>, reason={self.reason!r})"


# -- writing --------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _pickle(job_name: str, what: str, value: object, items: Iterable[tuple[str, object]]) -> bytes:
    try:
        return pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        # Name the offending item, not just the container: "keyword argument 'lock' (a
        # _thread.lock)" tells the user what to change.
        for label, item in items:
            try:
                pickle.dumps(item, protocol=_PICKLE_PROTOCOL)
            except Exception as item_exc:
                raise NotPicklableError(
                    f"Job {job_name!r} cannot be stored: {label} (a {_type_name(item)}) cannot "
                    f"be pickled ({_one_line(item_exc)}); pass something picklable, or use the "
                    "in-memory store"
                ) from item_exc
        raise NotPicklableError(
            f"Job {job_name!r} cannot be stored: its {what} cannot be pickled ({_one_line(exc)})"
        ) from exc


def _json(job_name: str, what: str, value: object) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        if isinstance(value, Mapping):
            for key, item in value.items():
                try:
                    json.dumps(item)
                except (TypeError, ValueError):
                    raise NotPicklableError(
                        f"Job {job_name!r} cannot be stored: {what} {key!r} "
                        f"(a {_type_name(item)}) is not JSON-serializable"
                    ) from exc
        raise NotPicklableError(
            f"Job {job_name!r} cannot be stored: its {what} is not JSON-serializable "
            f"({_one_line(exc)})"
        ) from exc


def _trigger_text(job: Job) -> str:
    trigger = job.trigger
    if isinstance(trigger, BrokenTrigger) and set(trigger.state) == {_RAW_KEY}:
        return str(trigger.state[_RAW_KEY])  # unparsable text we read: write it back as it was
    return _json(job.name, "trigger state", trigger.to_state())


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def job_to_row(job: Job, updated_at: float) -> dict[str, Any]:
    """The column values of ``job`` (``unbound`` is runtime state and is not stored).

    :raises NotPicklableError: an argument cannot be pickled, or the parameters or trigger
        state are not JSON-serializable
    """
    args = job.args
    if isinstance(args, UnreadableArgs):
        args_blob = args.data
    else:
        args = tuple(args)
        args_blob = _pickle(
            job.name, "arguments", args, ((f"argument {i}", a) for i, a in enumerate(args))
        )
    kwargs = job.kwargs
    if isinstance(kwargs, UnreadableKwargs):
        kwargs_blob = kwargs.data
    else:
        kwargs = dict(kwargs)
        kwargs_blob = _pickle(
            job.name,
            "keyword arguments",
            kwargs,
            ((f"keyword argument {k!r}", v) for k, v in kwargs.items()),
        )
    parameters = None if job.parameters is None else dict(job.parameters)
    options: dict[str, Any] = {key: getattr(job, key) for key in _OPTIONS}
    options["parameters"] = parameters
    if parameters is not None:
        _json(job.name, "parameter", parameters)  # names the offending parameter
    return {
        "name": job.name,
        "owner": job.owner,
        "kind": job.kind,
        "target": job.target,
        "trigger": _trigger_text(job),
        "executor": job.executor,
        "args": args_blob,
        "kwargs": kwargs_blob,
        "options": _json(job.name, "options", options),
        "paused": bool(job.paused),
        "next_run_time": job.next_ts,
        "created_at": job.created_ts,
        "updated_at": updated_at,
        "version": JOB_STATE_VERSION,
    }


# -- reading --------------------------------------------------------------------------------


def _restore_trigger(text: str) -> tuple[Trigger | None, dict[str, Any], str | None]:
    """(trigger or None, state, reason it could not be restored)."""
    try:
        state = json.loads(text)
    except (TypeError, ValueError) as exc:
        return None, {_RAW_KEY: text}, f"trigger state is not JSON ({_one_line(exc)})"
    if not isinstance(state, dict):
        return None, {_RAW_KEY: text}, "trigger state is not a JSON object"
    try:
        return trigger_from_state(state), state, None
    except Exception as exc:  # any reason at all: the job must still be listed
        return None, state, _one_line(exc)


#: what :func:`job_to_row` stores for no arguments: read back without unpickling
_NO_ARGS_BLOB = pickle.dumps((), protocol=_PICKLE_PROTOCOL)
_NO_KWARGS_BLOB = pickle.dumps({}, protocol=_PICKLE_PROTOCOL)
#: Job's defaults for the options a row may lack (written before they existed)
_OPTION_DEFAULTS = tuple(Job.__dataclass_fields__[key].default for key in _OPTIONS)


def _unpickle(blob: bytes | None, empty: Any) -> tuple[Any, str | None]:
    if blob is None:
        return empty, None
    try:
        return pickle.loads(blob), None
    except Exception as exc:  # a class that is gone, a module not importable here, ...
        return None, _one_line(exc)


@lru_cache(maxsize=256)
def _read_options(text: str) -> tuple[tuple[Any, ...], bool, str | None]:
    """(the values of :data:`_OPTIONS`, whether there are parameters, why the text is
    unreadable). Cached: most jobs of a store have the same options text, and a restart over
    10k jobs reads it 10k times. Parameters are left out (a dict each job must own)."""
    try:
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
    except (TypeError, ValueError) as exc:
        return _OPTION_DEFAULTS, False, f"options are unreadable ({_one_line(exc)})"
    values = tuple(
        loaded.get(key, default) for key, default in zip(_OPTIONS, _OPTION_DEFAULTS, strict=True)
    )
    return values, loaded.get("parameters") is not None, None


def row_to_job(row: Mapping[Any, Any]) -> Job:
    """Rebuild a job from its columns. Never raises for bad stored data: see the module doc."""
    problems: list[str] = []
    trigger, state, reason = _restore_trigger(row["trigger"])
    if reason:
        problems.append(reason)

    version = row["version"]
    if version is not None and version > JOB_STATE_VERSION:
        problems.insert(0, f"stored by a newer nbsched (job state version {version})")

    args: Any
    blob = row["args"]
    if blob == _NO_ARGS_BLOB:
        args, why = (), None
    else:
        args, why = _unpickle(blob, ())
    if why:
        problems.append(f"arguments cannot be unpickled ({why})")
        args = UnreadableArgs(bytes(row["args"]), why)
    elif not isinstance(args, tuple):
        args = tuple(args)
    kwargs: Any
    blob = row["kwargs"]
    if blob == _NO_KWARGS_BLOB:
        kwargs, why = {}, None
    else:
        kwargs, why = _unpickle(blob, {})
    if why:
        problems.append(f"keyword arguments cannot be unpickled ({why})")
        kwargs = UnreadableKwargs(bytes(row["kwargs"]), why)

    text = row["options"] or "{}"
    options, has_parameters, why = _read_options(text)
    if why:
        problems.append(why)
    parameters = json.loads(text)["parameters"] if has_parameters else None

    if problems or trigger is None:
        trigger = BrokenTrigger(state, "; ".join(problems))
    timeout, max_instances, coalesce, grace, retries, retry_delay = options
    owner = row["owner"]
    return Job.build(
        row["name"],
        sys.intern(row["target"]),  # (thousands of jobs of one function share one string)
        trigger,
        JobOptions.get((
            row["kind"], row["executor"], args, kwargs, timeout, max_instances, coalesce,
            grace, retries, retry_delay, bool(row["paused"]), parameters,
            None if owner is None else sys.intern(owner), False, UTC, UTC,
        )),
        row["next_run_time"],
        row["created_at"],
    )


# -- runs -----------------------------------------------------------------------------------


def run_to_row(run: Run) -> dict[str, Any]:
    """The column values of ``run``."""
    return {
        "id": run.id,
        "job_name": run.job_name,
        "owner": run.owner,
        "status": run.status.value,
        "scheduled_ts": run.scheduled_ts,
        "started_ts": run.started_ts,
        "finished_ts": run.finished_ts,
        "output": run.output,
        "error": run.error,
        "attempt": run.attempt,
        "output_path": run.output_path,
    }


def row_to_run(row: Mapping[Any, Any]) -> Run:
    """Rebuild a run. A status this version does not know (written by a newer nbsched) reads as
    ``failed`` with the stored status named in ``error``, rather than hiding the run."""
    error = row["error"]
    try:
        status = RunStatus(row["status"])
    except ValueError:
        status = RunStatus.failed
        error = f"[stored status {row['status']!r} is unknown to this nbsched] {error or ''}"
    return Run(
        id=row["id"],
        job_name=row["job_name"],
        status=status,
        scheduled_ts=row["scheduled_ts"],
        started_ts=row["started_ts"],
        finished_ts=row["finished_ts"],
        output=row["output"] or "",
        error=error,
        attempt=row["attempt"] or 0,
        owner=row["owner"],
        output_path=row["output_path"],
    )
