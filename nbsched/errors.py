"""The errors nbsched raises.

Every error is a subclass of :class:`NbschedError` *and* of the builtin a caller would
naturally catch (``ValueError`` for bad input, ``LookupError`` for unknown names, ...).
Messages say what was wrong, what would be right and, where it helps, what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "NbschedError",
    "InvalidArgumentError",
    "TriggerParseError",
    "JobLookupError",
    "ConflictingJobError",
    "NotPicklableError",
    "TargetLookupError",
    "StateVersionError",
    "SchedulerNotRunningError",
    "StoreError",
    "RunStillRunningError",
]


class NbschedError(Exception):
    """Base class of every error nbsched raises on purpose."""


class InvalidArgumentError(NbschedError, ValueError):
    """An argument has the wrong value (a negative timeout, an unknown executor, ...)."""


class TriggerParseError(NbschedError, ValueError):
    """A schedule string (duration, cron expression, phrase, date) could not be understood."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class JobLookupError(NbschedError, LookupError):
    """No job with the given name exists (in this scheduler's notebook, or in the store)."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        known = sorted(known)
        hint = did_you_mean(name, known)
        if not hint and known:
            shown = ", ".join(repr(k) for k in known[:8]) + (", ..." if len(known) > 8 else "")
            hint = f" (known: {shown})"
        elif not known:
            hint = " (there are no jobs)"
        super().__init__(f"No job named {name!r}{hint}")
        self.name = name

    def __str__(self) -> str:  # LookupError subclasses of KeyError quote their message
        return str(self.args[0])


class ConflictingJobError(NbschedError, KeyError):
    """A job with that name already exists and ``replace_existing`` was not given."""

    def __init__(self, name: str, detail: str = "") -> None:
        msg = detail or (
            f"A job named {name!r} already exists; pass replace_existing=True to update it, "
            "or choose another name"
        )
        super().__init__(msg)
        self.name = name

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0])


class NotPicklableError(NbschedError, TypeError):
    """A job's target or arguments cannot be serialized where they must be."""


class TargetLookupError(NbschedError, LookupError):
    """A ``"module:function"`` reference does not name an importable callable."""

    def __str__(self) -> str:
        return str(self.args[0])


class StateVersionError(NbschedError, ValueError):
    """Persisted state was written by a newer (or unknown) version of nbsched."""


class SchedulerNotRunningError(NbschedError, RuntimeError):
    """An operation needs a started scheduler."""


class StoreError(NbschedError, RuntimeError):
    """The job store failed (database unreachable, locked, ...)."""


class RunStillRunningError(NbschedError, TimeoutError):
    """``Scheduler.run_job`` stopped waiting; the run goes on in the background and is
    recorded as usual.

    :ivar job_name: the job
    :ivar run_id: the run, for ``Scheduler.cancel_run``
    """

    def __init__(self, job_name: str, run_id: str, waited: float) -> None:
        super().__init__(
            f"Run {run_id} of job {job_name!r} is still running after {waited:g} s; it goes "
            f"on in the background and will be recorded: see get_runs({job_name!r}) "
            f"(%schedule show {job_name}), stop it with cancel_run({run_id!r}) "
            f"(%schedule cancel {job_name})"
        )
        self.job_name = job_name
        self.run_id = run_id
