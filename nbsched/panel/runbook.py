"""What the scheduler's events said about runs, kept for the panel.

A refresh reads this instead of the store: with 1,000 jobs firing every second, a
``get_runs`` per job and refresh would cost more than the jobs themselves.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from ..events import Event, JobRemoved, RunFinished, RunStarted
from ..jobs import Run, RunStatus

__all__ = ["Mark", "RunBook"]

#: a timeline mark: (start or fire time, end time or None, status)
Mark = tuple[float, float | None, RunStatus]


class RunBook:
    """What the scheduler's events said about runs: the newest run of each job, the runs in
    flight, a short history, and recent start/end marks per job for the timeline.

    Fed by :meth:`on_event` from whatever thread emits the event, read by :func:`~.state.snapshot`
    on the refresher's thread: every method takes the lock, and each event costs a few dict
    and deque operations.

    :param history: how many finished runs to keep for the history list
    :param marks: how many recent runs per job to keep for the timeline
    """

    def __init__(self, history: int = 50, marks: int = 12) -> None:
        self._lock = threading.Lock()
        self._recent: deque[Run] = deque(maxlen=history)
        self._last: dict[str, Run] = {}
        self._inflight: dict[str, tuple[str, float]] = {}  # run id -> (job, started)
        self._progress: dict[str, tuple[int, int]] = {}
        self._marks: dict[str, deque[Mark]] = {}
        self._keep_marks = marks
        self._selected: str | None = None
        self._pinned: Run | None = None  # the selected run, even once out of the history
        self._live: tuple[str, str] | None = None  # (run id, output so far) of the selected
        #: bumped by every change (tells a reader whether anything happened since it looked)
        self.changes = 0

    def seed(self, runs: Iterable[Run]) -> None:
        """Start from stored runs (newest first, as ``Scheduler.get_runs`` returns them).
        Events may have arrived already (the listener is added first, so that none is
        missed): what they said is newer and stays."""
        runs = list(runs)
        with self._lock:
            known = {r.id for r in self._recent}
            older = [r for r in reversed(runs) if r.id not in known]
            finished = [r for r in older if r.status is not RunStatus.running]
            for run in older:
                if run.status is RunStatus.running:
                    started = run.started_ts if run.started_ts is not None else run.scheduled_ts
                    self._inflight.setdefault(run.id, (run.job_name, started))
            self._recent = deque([*finished, *self._recent], maxlen=self._recent.maxlen)
            newest = {run.job_name: run for run in finished}
            for name, run in newest.items():
                self._last.setdefault(name, run)
            by_job: dict[str, list[Mark]] = {}
            for run in finished:
                by_job.setdefault(run.job_name, []).append(_mark(run))
            for name, marks in by_job.items():
                self._marks[name] = deque(
                    [*marks, *self._marks.get(name, ())], maxlen=self._keep_marks
                )
            self.changes += 1

    def seed_last(self, last: Mapping[str, Run | None]) -> None:
        """The newest run of each job, where the scheduler can tell (``last_runs``): jobs
        whose last run is older than the history read by :meth:`seed` get theirs too."""
        with self._lock:
            for name, run in last.items():
                if run is not None and run.status is not RunStatus.running:
                    self._last.setdefault(name, run)
            self.changes += 1

    def on_event(self, event: Event) -> None:
        """Take in one scheduler event (others than run and removal events are ignored)."""
        if isinstance(event, RunStarted):
            with self._lock:
                self._inflight[event.run_id] = (event.job_name, event.timestamp)
                self.changes += 1
        elif isinstance(event, RunFinished):
            with self._lock:
                self._inflight.pop(event.run.id, None)
                self._progress.pop(event.run.id, None)
                self._finished(event.run)
                self.changes += 1
        elif isinstance(event, JobRemoved):
            with self._lock:
                self._last.pop(event.job_name, None)
                self._marks.pop(event.job_name, None)
                self.changes += 1
        else:
            # Notebook runs report progress (``RunProgress``, where the scheduler has it);
            # looked up by its fields, so the panel works with schedulers that do not.
            done = getattr(event, "cells_done", None)
            run_id = getattr(event, "run_id", None)
            if isinstance(done, int) and isinstance(run_id, str):
                total = getattr(event, "cells_total", 0)
                with self._lock:
                    self._progress[run_id] = (done, int(total or 0))
                    self.changes += 1

    def select(self, run_id: str | None) -> None:
        """Keep the run ``run_id`` findable (its details are shown) until another is
        selected."""
        with self._lock:
            self._selected = run_id
            self._pinned = None
            self._live = None
            for run in self._recent:
                if run.id == run_id:
                    self._pinned = run
            self.changes += 1

    def live_output(self, run_id: str, text: str | None) -> str:
        """The output so far of the run in flight ``run_id``: ``text`` as just read from the
        scheduler, remembered; when that is ``None`` (the run ended a moment ago and its
        record is on its way here), what was read last, so the view does not blank out."""
        with self._lock:
            if text is not None:
                self._live = (run_id, text)
                return text
            live = self._live
            return live[1] if live is not None and live[0] == run_id else ""

    def _finished(self, run: Run) -> None:
        if run.id == self._selected:
            self._pinned = run
        self._recent.append(run)
        self._last[run.job_name] = run
        marks = self._marks.get(run.job_name)
        if marks is None:
            marks = self._marks[run.job_name] = deque(maxlen=self._keep_marks)
        marks.append(_mark(run))

    def last_runs(self) -> dict[str, Run]:
        """The newest finished run of each job seen."""
        with self._lock:
            return dict(self._last)

    def running(self) -> dict[str, str]:
        """The newest run in flight of each job: job name -> run id."""
        with self._lock:
            return {job: run_id for run_id, (job, _) in self._inflight.items()}

    def find(self, run_id: str) -> Run | None:
        """A finished run still in the history, by id."""
        with self._lock:
            if self._pinned is not None and self._pinned.id == run_id:
                return self._pinned
            for run in self._recent:
                if run.id == run_id:
                    return run
            return None

    def view(
        self, names: Sequence[str]
    ) -> tuple[list[Run], dict[str, tuple[str, float]], dict[str, tuple[int, int]], dict[str, tuple[Mark, ...]]]:
        """Copies for one snapshot: finished history, runs in flight, progress, and the
        timeline marks of ``names``."""
        with self._lock:
            marks = {n: tuple(self._marks.get(n, ())) for n in names}
            return list(self._recent), dict(self._inflight), dict(self._progress), marks


def _mark(run: Run) -> Mark:
    start = run.started_ts if run.started_ts is not None else run.scheduled_ts
    return (start, run.finished_ts, run.status)
