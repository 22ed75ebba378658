"""The trigger registry: triggers as versioned JSON state, and back.

Trigger classes join with :func:`register_trigger`; stores rebuild them with
:func:`trigger_from_state`. A state that cannot be rebuilt becomes a :class:`BrokenTrigger`,
so its job is still listed (and can be removed or replaced) instead of disappearing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..abc import Trigger
from ..errors import StateVersionError

__all__ = ["register_trigger", "trigger_from_state", "BrokenTrigger"]

_TRIGGERS: dict[str, type[Trigger]] = {}
T = TypeVar("T", bound=type[Trigger])


def register_trigger(cls: T) -> T:
    """Class decorator: make ``cls`` restorable from its ``to_state()``."""
    _TRIGGERS[cls.type_name] = cls
    return cls


def trigger_from_state(state: Mapping[str, Any]) -> Trigger:
    """Rebuild a trigger from ``Trigger.to_state()`` output.

    :raises StateVersionError: unknown trigger type or state version
    """
    kind = state.get("type")
    cls = _TRIGGERS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise StateVersionError(
            f"Unknown trigger type {kind!r} in stored state (known: {sorted(_TRIGGERS)}); "
            "was the store written by a newer nbsched?"
        )
    return cls.from_state(state)


@register_trigger
class BrokenTrigger(Trigger):
    """Stands in for a stored trigger that cannot be restored, so that the job is still
    listed (and can be removed or replaced) instead of disappearing. It never fires."""

    type_name = "broken"

    def __init__(self, state: Mapping[str, Any], reason: str) -> None:
        self.state = dict(state)
        self.reason = reason

    def next_fire_time(self, after: datetime) -> datetime | None:
        return None

    def describe(self) -> str:
        return f"unreadable schedule ({self.reason})"

    def to_state(self) -> dict[str, Any]:
        return self.state  # written back unchanged

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Trigger:
        return cls(state, "unreadable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BrokenTrigger) and other.state == self.state

    def __hash__(self) -> int:
        return hash(repr(sorted(self.state.items())))

    def __repr__(self) -> str:
        return f"BrokenTrigger({self.state!r}, reason={self.reason!r})"
