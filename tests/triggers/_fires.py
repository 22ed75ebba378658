"""Helpers shared by the trigger tests."""

from __future__ import annotations

from datetime import datetime

from nbsched.abc import Trigger


def fires(trigger: Trigger, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` fire times of ``trigger`` after ``after`` (fewer if it runs out)."""
    out: list[datetime] = []
    for _ in range(n):
        nxt = trigger.next_fire_time(after)
        if nxt is None:
            break
        out.append(nxt)
        after = nxt
    return out
