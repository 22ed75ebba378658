"""Reading run history for callers: the store's records, with those the run writer has not
written yet merged in from memory.

Reads never wait long for the store. A store another process holds locked makes writes wait
(``busy_timeout``) and fail; the run writer retries in the background, and a caller asking
for history gets what the store has plus the records still queued here, rather than waiting
for the writes to go through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from ..abc import ALL_OWNERS, JobStore
from ..jobs import Run
from .writer import RunWriter

__all__ = ["RunHistory"]

log = logging.getLogger("nbsched")

_NO_START = float("-inf")


def newest_key(run: Run) -> tuple[float, float, str]:
    """Sort key of the stores' order, newest last: fire time, start time, id."""
    started = run.started_ts
    return (run.scheduled_ts, _NO_START if started is None else started, run.id)


class RunHistory:
    """Run history of one owner's jobs."""

    def __init__(self, store: JobStore, writer: RunWriter, owner: str | None) -> None:
        self._store = store
        self._writer = writer
        self._owner = owner

    def runs(self, name: str | None, limit: int) -> list[Run]:
        """Runs of ``name`` (or of all the owner's jobs), newest first. Pending records are
        written first, in one attempt; if the store refuses it (locked), they are merged in
        from memory instead of retried."""
        if self._writer.flush(timeout=0):
            return self._store.get_runs(name, owner=self._owner, limit=limit)
        pending = self._pending(None if name is None else [name])
        stored = self._store.get_runs(name, owner=self._owner, limit=limit)
        if not pending:
            return stored
        merged = {run.id: run for run in stored}
        merged.update((run.id, run) for run in pending)
        return sorted(merged.values(), key=newest_key, reverse=True)[:limit]

    def last(self, names: Sequence[str] | None) -> tuple[dict[str, Run], str | None]:
        """The newest run of each job in ``names`` (``None``: every job of the owner) that
        has one, in one store query, without writing anything first; and why the answer
        may be incomplete (the store could not be read), else ``None``."""
        owner: Any = self._owner if names is None else ALL_OWNERS
        problem = None
        try:
            newest = self._store.last_runs(names, owner=owner)
        except Exception as exc:  # down or locked: answer from what is in memory
            log.info("nbsched: reading the newest runs failed: %s", exc)
            newest, problem = {}, f"the store could not be read: {exc}"
        for run in self._pending(names):
            if names is None and run.owner != self._owner:
                continue
            known = newest.get(run.job_name)
            if known is None or known.id == run.id or newest_key(run) > newest_key(known):
                newest[run.job_name] = run
        return newest, problem

    def _pending(self, names: Iterable[str] | None) -> list[Run]:
        wanted = None if names is None else set(names)
        return [
            run for run in self._writer.pending_runs()
            if (wanted is None or run.job_name in wanted) and run.owner == self._owner
        ]
