"""What ``SQLAlchemyJobStore.write_runs`` knows about the size of each job's history
(private): enough to skip the retention prune of jobs far below ``retention``."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from ..jobs import RunStatus

__all__ = ["CHUNK", "RunCounts", "chunks"]

#: names per ``IN (...)`` list
CHUNK = 500


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class RunCounts:
    """How many runs each job may have in the table, as far as this process knows: lets
    ``write_runs`` skip the retention prune of jobs far below ``retention``.

    A job met for the first time is counted (one index range scan). After that its bound grows
    by the runs this process adds. A run is usually written twice, ``running`` and then
    finished; the ids written as ``running`` are remembered until they finish, so that the
    second write does not count as a new run. Runs another process writes for the same job are
    pruned by that process; this only ever makes our bound too high (a prune sooner than
    needed), never lets history grow past ``retention`` for long. Callers hold :attr:`lock`.
    """

    #: forget the in-flight ids beyond this many (they only make the bounds higher)
    MAX_IN_FLIGHT = 100_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bounds: dict[str, int] = {}
        self.in_flight: set[str] = set()

    def read(self, rows: Sequence[dict[str, Any]]) -> tuple[Counter[str], dict[str, int | None]]:
        """(runs added per job, the bound of each job or None if it must be counted)."""
        added: Counter[str] = Counter()
        for row in rows:
            if row["id"] not in self.in_flight:
                added[row["job_name"]] += 1
        return added, {row["job_name"]: self.bounds.get(row["job_name"]) for row in rows}

    def update(self, rows: Sequence[dict[str, Any]], bounds: dict[str, int]) -> None:
        """Record a committed write."""
        self.bounds.update(bounds)
        running = RunStatus.running.value
        for row in rows:
            if row["status"] == running:
                self.in_flight.add(row["id"])
            else:
                self.in_flight.discard(row["id"])
        if len(self.in_flight) > self.MAX_IN_FLIGHT:
            self.in_flight.clear()

    def forget(self, job_name: str) -> None:
        self.bounds.pop(job_name, None)
