"""The system clock: the only module of the core that reads the real time."""

from __future__ import annotations

import threading
import time

from .abc import Clock

__all__ = ["SystemClock"]

# A sleeping scheduler wakes at least this often even with nothing due, so that a wall-clock
# jump (NTP, suspend/resume) is noticed. One wake-up an hour costs nothing measurable.
_MAX_WAIT = 3600.0


class SystemClock(Clock):
    """Real time: ``time.time()`` for timestamps, condition waits for sleeping."""

    # time.time itself, not a method that calls it: a busy scheduler reads the clock a few
    # times per run, thousands of runs a second
    time = staticmethod(time.time)

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            cond.wait(_MAX_WAIT)
            return
        remaining = deadline - time.time()
        if remaining > 0:
            cond.wait(min(remaining, _MAX_WAIT))

    def __repr__(self) -> str:
        return "SystemClock()"
