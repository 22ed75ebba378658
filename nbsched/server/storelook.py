"""What other processes wrote to the store, for the event stream: kernels record their runs
and change their jobs in the store the server shares with them, and their events never reach
this process.

Two looks, both one query: the store's change marker (jobs added, changed or removed) and
each job's newest run (what the sidebar shows next to each job). The store's watch, asked
for run records too (inotify on an SQLite file, LISTEN on PostgreSQL's job and run channels),
says when to look, and a look every :data:`WATCHED_LOOK` seconds covers a lost report; where
the store cannot watch, the stream looks every :data:`POLL_LOOK` seconds while a client
listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..abc import JobStore
from ..jobs import Run, RunStatus
from .serialize import iso, run_json

__all__ = ["StoreLook", "POLL_LOOK", "WATCHED_LOOK"]

log = logging.getLogger(__name__)

#: seconds between looks when the store cannot report other processes' run records
POLL_LOOK = 1.0
#: seconds between looks while the store reports writes (in case a report was lost)
WATCHED_LOOK = 30.0

Message = tuple[str, dict[str, Any]]


class StoreLook:
    """Compares the store with what it held at the last look.

    :param store: the store the server's scheduler and the kernels share
    :param root: the server's root directory (runs carry paths relative to it)

    Every method but :meth:`start`'s callback runs on a worker thread (they query the store).
    """

    def __init__(self, store: JobStore, root: Path) -> None:
        self._store = store
        self._root = root
        self._unwatch: Callable[[], None] | None = None
        self._watched = False
        self._marker: object = None
        self._runs: dict[str, tuple[str, RunStatus]] = {}

    @property
    def interval(self) -> float | None:
        """Seconds until the next look without a report from the store; ``None`` for a store
        no other process writes (its changes all come as this process's events)."""
        if not self._store.is_shared:
            return None
        return WATCHED_LOOK if self._watched else POLL_LOOK

    def start(self, changed: Callable[[], None]) -> None:
        """Ask the store to call ``changed()`` (from a thread of its own) after writes."""
        if not self._store.is_shared:
            return
        try:
            # runs too: kernels record their runs in the store only
            self._unwatch = self._store.watch(changed, runs=True)
        except Exception:  # the store is unreachable now: poll, it may come back
            log.info("nbsched: cannot watch the store; polling it", exc_info=True)
            self._unwatch = None
        self._watched = self._unwatch is not None

    def stop(self) -> None:
        """Stop the store's watch."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def baseline(self) -> None:
        """Remember the store as it is (a client starts listening: it loads everything)."""
        self._marker = self._read_marker()
        self._runs = _fingerprint(self._read_runs() or {})

    def changes(self) -> list[Message]:
        """Stream messages for what changed since the last look: ``jobs-changed``, and per
        job whose newest run is another one or changed status, ``run-started`` or
        ``run-finished`` (the run's JSON, as the scheduler's own events send it)."""
        messages: list[Message] = []
        marker = self._read_marker()
        if marker != self._marker:
            self._marker = marker
            messages.append(("jobs-changed", {}))
        runs = self._read_runs()
        if runs is None:  # unreadable now: compare with the next look that works
            return messages
        seen = _fingerprint(runs)
        for name, run in sorted(runs.items()):
            if self._runs.get(name) == seen[name]:
                continue
            if run.status is RunStatus.running:
                messages.append(("run-started", {
                    "job_name": name, "run_id": run.id, "scheduled_for": iso(run.scheduled_ts)
                }))
            else:
                messages.append(("run-finished",
                                 {"job_name": name, "run": run_json(run, self._root)}))
        self._runs = seen
        return messages

    def _read_marker(self) -> object:
        try:
            return self._store.change_marker()
        except Exception:  # the store is unreachable: the status endpoint says so
            log.debug("nbsched: reading the store's change marker failed", exc_info=True)
            return None

    def _read_runs(self) -> dict[str, Run] | None:
        try:
            return self._store.last_runs()
        except Exception:
            log.debug("nbsched: reading the newest runs failed", exc_info=True)
            return None


def _fingerprint(runs: dict[str, Run]) -> dict[str, tuple[str, RunStatus]]:
    return {name: (run.id, run.status) for name, run in runs.items()}

