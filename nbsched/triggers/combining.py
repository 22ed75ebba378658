"""``OrTrigger``: the union of several triggers' fire times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from ..abc import Trigger
from ..errors import InvalidArgumentError
from ._base import STATE_VERSION, require_aware, restore
from ._walltime import local_datetime
from .registry import register_trigger, trigger_from_state

__all__ = ["OrTrigger"]


@register_trigger
class OrTrigger(Trigger):
    """Fires whenever any of ``triggers`` fires; a time several of them share fires once.

    Each child is asked for its own next time after the same ``after`` (APScheduler 3 asks
    with the *combined* previous time, which made its children misbehave), and the earliest
    answer wins. Exhausted when every child is.

    :param triggers: one or more triggers
    :raises InvalidArgumentError: no triggers, or something that is not a trigger
    """

    type_name = "or"
    __slots__ = ("_triggers",)

    def __init__(self, *triggers: Trigger) -> None:
        if not triggers:
            raise InvalidArgumentError("OrTrigger needs at least one trigger")
        for trigger in triggers:
            if not isinstance(trigger, Trigger):
                raise InvalidArgumentError(
                    f"OrTrigger takes triggers, got {type(trigger).__name__}: {trigger!r}"
                )
        self._triggers = tuple(triggers)

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """The combined triggers, in the order given."""
        return self._triggers

    @property
    def timezone(self) -> tzinfo | None:
        """The children's zone when they all share one, else ``None``."""
        zones = {t.timezone for t in self._triggers if t.timezone is not None}
        return zones.pop() if len(zones) == 1 else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrTrigger):
            return NotImplemented
        return self._triggers == other._triggers

    def __hash__(self) -> int:
        return hash((self.type_name, self._triggers))

    def __repr__(self) -> str:
        return f"OrTrigger({', '.join(repr(t) for t in self._triggers)})"

    def next_fire_time(self, after: datetime) -> datetime | None:
        ts = self.next_fire_ts(require_aware(after))
        if ts is None:
            return None
        zone = self.timezone
        return local_datetime(ts, zone) if zone is not None else datetime.fromtimestamp(ts, UTC)

    def next_fire_ts(self, after: float) -> float | None:
        times = [t for t in (c.next_fire_ts(after) for c in self._triggers) if t is not None]
        return min(times) if times else None

    def anchor(self, now: datetime) -> OrTrigger:
        return OrTrigger(*(t.anchor(now) for t in self._triggers))

    def describe(self) -> str:
        """The children's descriptions joined with ``"; or "``."""
        words = [t.describe() for t in self._triggers]
        rest = [w[:1].lower() + w[1:] for w in words[1:]]
        return "; or ".join([words[0], *rest])

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "type": self.type_name,
            "triggers": [t.to_state() for t in self._triggers],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OrTrigger:
        return restore(
            cls.type_name,
            state,
            lambda: cls(*(trigger_from_state(s) for s in state["triggers"])),
        )
