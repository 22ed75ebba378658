"""Server-sent events for the JupyterLab sidebar: the scheduler's events, turned into JSON
and handed from the scheduler's threads to the server's event loop.

Kernels write to the same store but their events do not reach this process, so while anyone
listens the hub also looks at the store (:class:`~.storelook.StoreLook`) soon after the store
reports a write: ``jobs-changed`` when another process added, changed or removed a job,
``run-started`` / ``run-finished`` when a kernel recorded a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..events import (
    Event,
    JobEvent,
    RunFinished,
    RunStarted,
    SchedulerFault,
    SchedulerRecovered,
)
from ..scheduler import Scheduler
from .serialize import iso, run_json
from .storelook import StoreLook

__all__ = ["EventHub", "event_json"]

log = logging.getLogger(__name__)

#: seconds a new stream waits at most for the hub's first look at the store
FIRST_LOOK = 5.0
#: most events a slow client may have waiting before it is dropped (it reconnects)
QUEUE_SIZE = 1000


def event_json(event: Event, root: Path) -> tuple[str, dict[str, Any]] | None:
    """``(SSE event name, data)`` for the events the sidebar shows, ``None`` for others."""
    if isinstance(event, RunFinished):
        return "run-finished", {"job_name": event.job_name, "run": run_json(event.run, root)}
    if isinstance(event, RunStarted):
        return "run-started", {
            "job_name": event.job_name,
            "run_id": event.run_id,
            "scheduled_for": iso(event.scheduled_ts),
        }
    if isinstance(event, JobEvent):
        kind = type(event).__name__.removeprefix("Job").lower()  # added, paused, ...
        return "job", {"job_name": event.job_name, "change": kind}
    if isinstance(event, SchedulerFault):
        return "status", {"healthy": False, "error": event.error}
    if isinstance(event, SchedulerRecovered):
        return "status", {"healthy": True, "error": None}
    return None


class EventHub:
    """Fans the scheduler's events out to every connected client.

    :param scheduler: whose events to send
    :param root: the server's root directory (runs carry paths relative to it)

    Listeners run on the scheduler's threads; events reach the clients through the server's
    event loop (the one the first client subscribes from).
    """

    def __init__(self, scheduler: Scheduler, root: Path) -> None:
        self._scheduler = scheduler
        self._root = root
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[tuple[str, str] | None]] = set()
        self._remove: Callable[[], None] | None = scheduler.add_listener(self._on_event)
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        self._wake = asyncio.Event()  # the store reported a write, or a client came
        self._looked = asyncio.Event()  # the store as the clients know it is remembered

    def _on_event(self, event: Event) -> None:
        item = event_json(event, self._root)
        loop = self._loop
        if item is not None and loop is not None and self._queues and not self._closed:
            message = (item[0], json.dumps(item[1]))
            try:
                loop.call_soon_threadsafe(self._publish, message)
            except RuntimeError:  # the loop closed (server shutdown under way)
                pass

    def _publish(self, message: tuple[str, str] | None) -> None:
        for queue in list(self._queues):
            if queue.qsize() < QUEUE_SIZE:
                queue.put_nowait(message)
            else:  # a client that stopped reading: its stream ends (the spare slot), it reconnects
                self._queues.discard(queue)
                queue.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[tuple[str, str] | None]:
        """A queue of ``(event name, JSON data)``; ``None`` means the stream ends."""
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE_SIZE + 1)
        if self._closed:
            queue.put_nowait(None)
            return queue
        self._queues.add(queue)
        if self._watcher is None:
            self._loop = asyncio.get_running_loop()
            self._watcher = self._loop.create_task(self._watch_store())
        self._wake.set()
        return queue

    async def looking(self) -> None:
        """Wait (a few seconds at most) until the hub has read the store for its clients:
        every write from then on reaches them."""
        try:
            await asyncio.wait_for(self._looked.wait(), FIRST_LOOK)
        except TimeoutError:  # a slow or absent store: the stream still works, late
            pass

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        """Stop sending to ``queue``."""
        self._queues.discard(queue)

    def end(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        """End the stream reading ``queue`` (its client left)."""
        if queue in self._queues:
            self._queues.discard(queue)
            queue.put_nowait(None)

    async def _watch_store(self) -> None:
        look = StoreLook(self._scheduler.store, self._root)
        loop = asyncio.get_running_loop()

        def changed() -> None:  # on a thread of the store's
            try:
                loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop closed (server shutdown under way)
                pass

        await asyncio.to_thread(look.start, changed)
        try:
            while not self._closed:
                if not self._queues:  # nobody listens: no looks; the next client starts over
                    self._looked.clear()
                elif not self._looked.is_set():
                    await asyncio.to_thread(look.baseline)
                    self._looked.set()
                elif look.interval is not None:
                    for name, data in await asyncio.to_thread(look.changes):
                        self._publish((name, json.dumps(data)))
                try:
                    await asyncio.wait_for(self._wake.wait(), look.interval)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            look.stop()

    def close(self) -> None:
        """End every stream (server shutdown) and stop listening."""
        self._closed = True
        if self._remove is not None:
            self._remove()
            self._remove = None
        if self._watcher is not None:
            self._watcher.cancel()
        self._looked.set()  # nobody waits for a look that will not come
        for queue in list(self._queues):
            queue.put_nowait(None)
        self._queues.clear()

