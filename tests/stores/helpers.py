"""Values for the store tests: a trigger of their own (so they do not depend on
``nbsched.triggers``), and job/run builders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nbsched.abc import Trigger
from nbsched.errors import StateVersionError
from nbsched.jobs import Job, Run, RunStatus
from nbsched.triggers.registry import register_trigger

# -- a trigger of our own, so these tests do not depend on nbsched.triggers ----------------------


@register_trigger
class EveryTrigger(Trigger):
    """Fires every ``seconds`` from ``start`` (POSIX seconds)."""

    type_name = "test-every"

    def __init__(self, seconds: float, start: float = 0.0) -> None:
        self.seconds = seconds
        self.start = start

    def next_fire_time(self, after: datetime) -> datetime | None:
        ts = after.timestamp()
        n = max(0, int((ts - self.start) // self.seconds) + 1)
        return datetime.fromtimestamp(self.start + n * self.seconds, UTC)

    def describe(self) -> str:
        return f"every {self.seconds:g} s"

    def to_state(self) -> dict[str, Any]:
        return {"version": 1, "type": self.type_name, "seconds": self.seconds, "start": self.start}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EveryTrigger:
        if state.get("version") != 1:
            raise StateVersionError(f"test-every state version {state.get('version')!r}")
        return cls(state["seconds"], state["start"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EveryTrigger) and (other.seconds, other.start) == (
            self.seconds,
            self.start,
        )

    def __hash__(self) -> int:
        return hash((self.seconds, self.start))

    def __repr__(self) -> str:
        return f"EveryTrigger({self.seconds!r}, {self.start!r})"


@register_trigger
class ExplodingTrigger(EveryTrigger):
    """Stores fine, but restoring it raises something that is not an NbschedError."""

    type_name = "test-exploding"

    def to_state(self) -> dict[str, Any]:
        return {**super().to_state(), "type": self.type_name}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EveryTrigger:
        raise RuntimeError("boom while restoring")


# -- value helpers -----------------------------------------------------------------------------

T0 = 1_800_000_000.0


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def make_job(name: str = "job", **kwargs: Any) -> Job:
    kwargs.setdefault("target", "tests.stores.helpers:target_function")
    kwargs.setdefault("trigger", EveryTrigger(60.0, T0))
    kwargs.setdefault("created_at", at(-3600))
    kwargs.setdefault("next_run_time", at(60))
    return Job(name=name, **kwargs)


def target_function(*args: Any, **kwargs: Any) -> None:
    """What the test jobs point at (never called)."""


def make_run(run_id: str, job_name: str = "job", scheduled: float = 0.0, **kwargs: Any) -> Run:
    kwargs.setdefault("status", RunStatus.succeeded)
    kwargs.setdefault("started_ts", T0 + scheduled + 0.5)
    kwargs.setdefault("finished_ts", T0 + scheduled + 1.0)
    return Run(id=run_id, job_name=job_name, scheduled_ts=T0 + scheduled, **kwargs)
