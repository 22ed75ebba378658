"""A run past its timeout whose executor takes long to stop it (a notebook's kernel to kill, a
Dask worker to ask) does not hold up the other jobs: the loop hands the stop to a thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from nbsched import DateTrigger, RunStatus, Scheduler
from nbsched.abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


class _SlowToStop(Executor):
    """Runs never end by themselves; stopping one blocks until the test lets it go."""

    name = "slow"

    def __init__(self) -> None:
        self.running: dict[str, RunRequest] = {}
        self.stopping = threading.Event()
        self.let_go = threading.Event()
        self._clock: Clock | None = None
        self._finish: FinishCallback | None = None

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock, self._finish = clock, on_finished
        self._started = on_started

    def submit(self, request: RunRequest) -> None:
        assert self._clock is not None
        request.started_ts = self._clock.time()
        self._started(request)
        self.running[request.run_id] = request

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        assert self._clock is not None and self._finish is not None
        request = self.running.pop(run_id, None)
        if request is None:
            return False
        self.stopping.set()
        self.let_go.wait(30)
        self._finish(request, status, "", "stopped", self._clock.time())
        return True

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        self.let_go.set()


def test_a_slow_stop_at_a_timeout_does_not_hold_up_other_fires(clock: FakeClock) -> None:
    slow = _SlowToStop()
    s = Scheduler(clock=clock, timezone="UTC", executors={"slow": slow}, lead=0)
    s.start()
    try:
        s.add_job(lambda: None, "every 1h", name="long", executor="slow", timeout=5)
        clock.advance(3600)
        wait_for(lambda: slow.running, 10, "the long run to start")
        clock.advance(5)  # past its timeout: the executor is asked to stop it, and dawdles
        wait_for(slow.stopping.is_set, 10, "the stop to begin")
        ran: list[float] = []
        when = datetime.fromtimestamp(clock.time() + 10, UTC)
        s.add_job(lambda: ran.append(clock.time()), DateTrigger(when), name="tick")
        clock.advance(10)
        wait_for(lambda: ran, 10, "the other job to run while the stop is under way")
        assert ran == [when.timestamp()]
        slow.let_go.set()
        wait_for(lambda: s.get_runs("long")[0].status.finished, 10, "the long run's record")
        run = s.get_runs("long")[0]
        assert run.status is RunStatus.timed_out and run.error == "stopped"
    finally:
        s.shutdown()
