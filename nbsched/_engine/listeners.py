"""Who hears about what happens: the listener registry, and the faults the engine reports.

Listeners are called on the thread that caused the event (the loop, a worker, the caller of
an API method), outside the scheduler's lock; one that raises is logged and never reaches
the scheduler. The registry is read without a lock on every run: listening to fewer event
types costs less, and with nobody listening to a type its events are not even created.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..abc import Clock
from ..events import Event, SchedulerFault, SchedulerRecovered

__all__ = ["Faults", "Listeners"]

log = logging.getLogger("nbsched")

Callback = Callable[[Event], None]


class Listeners:
    """Callbacks by the event types they want (``None``: every type)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: tuple[tuple[Callback, tuple[type, ...] | None], ...] = ()
        #: who wants which event class (a cache, rebuilt after every change)
        self._by_type: dict[type, tuple[Callback, ...]] = {}
        #: how many times a listener raised (``status()["listener_errors"]``); a plain int:
        #: a lost increment between two threads only undercounts a count of mistakes
        self.failures = 0

    def add(self, callback: Callback, types: tuple[type[Event], ...] | None) -> Callable[[], None]:
        """Register ``callback`` for ``types``; returns the function that removes it."""
        item = (callback, types)
        with self._lock:
            self._items = (*self._items, item)
            self._by_type = {}

        def remove() -> None:
            with self._lock:
                self._items = tuple(x for x in self._items if x is not item)
                self._by_type = {}

        return remove

    def callbacks(self, cls: type) -> tuple[Callback, ...]:
        """The listeners that want events of class ``cls`` (lock-free; cached)."""
        by_type = self._by_type
        found = by_type.get(cls)
        if found is None:
            found = by_type[cls] = tuple(
                cb for cb, types in self._items if types is None or issubclass(cls, types)
            )
        return found

    def emit(self, event: Event) -> None:
        for callback in self.callbacks(type(event)):
            self.call(callback, event)

    def call(self, callback: Callback, event: Event) -> None:
        """Call one listener; what it raises is logged (logger ``nbsched``) and counted,
        never propagated: a broken listener must not stop runs or the loop."""
        try:
            callback(event)
        except Exception:
            self.failures += 1
            log.exception("nbsched: listener %r failed on %r", callback, event)


class Faults:
    """What is wrong right now, by place (``"loop"``, ``"store"``, ``"writer"``): shown by
    ``Scheduler.status()``; a new fault emits :class:`SchedulerFault`, the last one cleared
    :class:`SchedulerRecovered`."""

    def __init__(self, listeners: Listeners, clock: Clock) -> None:
        self._listeners = listeners
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: dict[str, str] = {}

    def __contains__(self, where: str) -> bool:
        return where in self._faults  # (lock-free: a dict lookup)

    def set(self, where: str, message: str) -> None:
        with self._lock:
            new = self._faults.get(where) != message
            self._faults[where] = message
        if new:
            self._listeners.emit(SchedulerFault(timestamp=self._clock.time(), error=message))

    def clear(self, where: str) -> None:
        if where not in self._faults:
            return
        with self._lock:
            had = self._faults.pop(where, None)
            healthy = not self._faults
        if had is not None and healthy:
            self._listeners.emit(SchedulerRecovered(timestamp=self._clock.time()))

    def writer(self, message: str | None) -> None:
        """The run writer's report: a failed write, or ``None`` when writes work again."""
        if message is None:
            self.clear("writer")
        else:
            self.set("writer", message)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._faults)
