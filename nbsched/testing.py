"""Helpers for testing code that uses nbsched (public, like ``trio.testing``)."""

from __future__ import annotations

import threading
from datetime import datetime

from .abc import Clock

__all__ = ["FakeClock"]


class FakeClock(Clock):
    """A clock that only moves when told to: ``clock.advance(10)``.

    A scheduler built with ``clock=FakeClock()`` sleeps until the fake time reaches its next
    fire time, so tests advance time instead of sleeping.

    :param start: the initial time, POSIX seconds or an aware datetime
    """

    def __init__(self, start: float | datetime = 1_800_000_000.0) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._lock = threading.Lock()
        self._waiters: set[threading.Condition] = set()

    def time(self) -> float:
        return self._now

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        # Register before looking at the time: an advance() that happens after the check is
        # then guaranteed to notify us (it needs ``cond``, which cond.wait() releases).
        with self._lock:
            self._waiters.add(cond)
        try:
            if deadline is not None and deadline <= self._now:
                return
            cond.wait()
        finally:
            with self._lock:
                self._waiters.discard(cond)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake everything waiting on this clock."""
        if seconds < 0:
            raise ValueError(f"FakeClock cannot go backwards (got {seconds})")
        self.set(self._now + seconds)

    def set(self, when: float | datetime) -> None:
        """Jump to an absolute time (never backwards)."""
        ts = when.timestamp() if isinstance(when, datetime) else float(when)
        with self._lock:
            self._now = max(self._now, ts)
            waiters = list(self._waiters)
        for cond in waiters:
            with cond:
                cond.notify_all()

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
