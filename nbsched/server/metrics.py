"""The hosted scheduler's numbers on the Jupyter server's Prometheus endpoint (``/metrics``).

jupyter_server serves ``prometheus_client``'s default registry there. One collector is
registered in it per process (servers started one after another in one process, as tests do,
share it); each server's :class:`SchedulerMetrics` adds itself while it runs.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from ..events import Event, RunFinished, SchedulerFault
from ..scheduler import Scheduler

__all__ = ["SchedulerMetrics"]

#: lateness buckets in seconds (how long after its fire time a run started)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)


class SchedulerMetrics:
    """Counts the events of one scheduler; read by the process-wide collector.

    :param scheduler: the scheduler to count
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.faults = 0
        self.lateness_buckets = [0] * (len(LATENESS_BUCKETS) + 1)
        self.lateness_sum = 0.0
        self._remove = scheduler.add_listener(self._on_event, (RunFinished, SchedulerFault))
        _COLLECTOR.add(self)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunFinished):
                self.runs[event.run.status.value] += 1
                late = event.run.lateness
                if late is not None:
                    late = max(0.0, late)
                    self.lateness_buckets[bisect.bisect_left(LATENESS_BUCKETS, late)] += 1
                    self.lateness_sum += late
            elif isinstance(event, SchedulerFault):
                self.faults += 1

    def snapshot(self) -> dict[str, Any]:
        """The counts so far and the scheduler's current status."""
        with self._lock:
            counts = {
                "runs": dict(self.runs),
                "faults": self.faults,
                "buckets": list(self.lateness_buckets),
                "lateness_sum": self.lateness_sum,
            }
        counts["status"] = self.scheduler.status()
        return counts

    def close(self) -> None:
        """Stop counting and leave ``/metrics``."""
        self._remove()
        _COLLECTOR.discard(self)


class _Collector(Collector):
    """Sums the metrics of every :class:`SchedulerMetrics` of this process."""

    def __init__(self) -> None:
        self._sources: list[SchedulerMetrics] = []
        self._lock = threading.Lock()
        self._registered = False

    def add(self, source: SchedulerMetrics) -> None:
        with self._lock:
            self._sources.append(source)
            register, self._registered = not self._registered, True
        if register:  # (register() collects once, which takes the lock)
            REGISTRY.register(self)

    def discard(self, source: SchedulerMetrics) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            sources = list(self._sources)
        snaps = [s.snapshot() for s in sources]
        runs = CounterMetricFamily(
            "nbsched_runs", "Finished runs of the server's scheduler, by status", labels=["status"]
        )
        totals: Counter[str] = Counter()
        for snap in snaps:
            totals.update(snap["runs"])
        for status, count in sorted(totals.items()):
            runs.add_metric([status], count)
        yield runs
        faults = CounterMetricFamily(
            "nbsched_store_faults", "Faults of the scheduler's loop or store (it retries)"
        )
        faults.add_metric([], sum(s["faults"] for s in snaps))
        yield faults
        lateness = HistogramMetricFamily(
            "nbsched_run_lateness_seconds", "Seconds between a run's fire time and its start"
        )
        cumulative, buckets = 0, []
        for i, bound in enumerate((*LATENESS_BUCKETS, float("inf"))):
            cumulative += sum(s["buckets"][i] for s in snaps)
            buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", cumulative))
        lateness.add_metric([], buckets, sum(s["lateness_sum"] for s in snaps))
        yield lateness
        for name, key, text in (
            ("nbsched_runs_in_flight", "running_runs", "Runs in flight"),
            ("nbsched_pending_writes", "pending_writes", "Run records waiting to be written"),
            ("nbsched_jobs", "jobs", "Jobs the server's scheduler serves"),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], sum(int(s["status"].get(key) or 0) for s in snaps))
            yield gauge
        healthy = GaugeMetricFamily("nbsched_healthy", "1 while every scheduler is healthy")
        healthy.add_metric([], float(all(s["status"]["healthy"] for s in snaps)))
        yield healthy


_COLLECTOR = _Collector()
