"""panel/controller.py: actions through the public API, the throttled refresher thread, the
panel's lifecycle and display bundle."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator

import pytest

import nbsched
from nbsched import Scheduler
from nbsched.display import JobTable
from nbsched.panel.controller import SchedulerPanel
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for


def ok() -> None:
    print("ok")


@pytest.fixture
def panel(sched: Scheduler, clock: FakeClock) -> Iterator[SchedulerPanel]:
    p = SchedulerPanel(sched, clock=clock, start=False, min_interval=0.5)
    yield p
    p.close()


def status(panel: SchedulerPanel) -> str:
    return str(panel.view.status.value)


def test_actions_use_the_scheduler_and_report_in_the_status_line(
    panel: SchedulerPanel, sched: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    sched.add_job(ok, "every 10s", name="alpha")
    ctl = panel.controller
    ctl.act("pause", "alpha")
    assert sched.get_job("alpha").paused and "Paused alpha" in status(panel)
    ctl.act("resume", "alpha")
    assert not sched.get_job("alpha").paused and "Resumed alpha" in status(panel)
    with caplog.at_level(logging.DEBUG, logger="nbsched"):
        ctl.act("pause", "nope")  # raises nothing: the error is one line in the panel
    assert "nope" in status(panel) and "#c62828" in status(panel)
    assert "Traceback" not in status(panel) and "\n" not in status(panel)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback in the log either
    ctl.act("remove", "alpha")
    assert sched.get_jobs() == [] and "Removed alpha" in status(panel)


@pytest.fixture
def real_sched() -> Iterator[Scheduler]:
    """On the system clock: runs that end are settled by the loop's own wakeups."""
    s = Scheduler(timezone="UTC")
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def test_run_now_and_cancel_leave_the_caller_free(real_sched: Scheduler) -> None:
    sched = real_sched
    panel = SchedulerPanel(sched)  # the refresher shows the outcomes
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)

    sched.add_job(slow, "every 1h", name="slow")
    panel.controller.act("run", "slow")  # returns while the run is still going
    assert started.wait(10) and not release.is_set()
    assert "Running slow now" in status(panel)
    release.set()
    wait_for(lambda: "Ran slow: succeeded" in status(panel), what="the run's outcome")

    release.clear()
    started.clear()
    panel.controller.act("run", "slow")
    assert started.wait(10)
    panel.controller.act("cancel", "slow")
    wait_for(lambda: sched.get_runs("slow", limit=1)[0].status.value == "cancelled",
             what="the run cancelled")
    # The cancel and the run-now both report, in either order: "Cancelled a run of slow."
    # or "Ran slow: cancelled."
    wait_for(lambda: "ancelled" in status(panel) and "slow" in status(panel),
             what="the cancel's outcome")
    release.set()

    def broken() -> None:
        raise ValueError("source offline")

    sched.add_job(broken, "every 1h", name="broken")
    panel.controller.act("run", "broken")
    wait_for(lambda: "Ran broken: failed" in status(panel), what="the failed run's outcome")
    assert "#c62828" in status(panel)  # in the error colour
    panel.close()


def test_refreshes_are_throttled_on_the_given_clock(
    panel: SchedulerPanel, sched: Scheduler, clock: FakeClock
) -> None:
    ctl = panel.controller
    assert ctl.poll(0.0)  # first refresh at once
    assert not ctl.poll(0.3) and not ctl.poll(0.9)  # quiet: next one is the 1 s tick
    assert ctl.poll(1.0)
    sched.add_job(ok, "every 10s", name="alpha")  # an event: refresh after min_interval
    assert not ctl.poll(1.2)
    assert ctl.poll(1.5)
    assert ctl.state is not None and [r.name for r in ctl.state.jobs] == ["alpha"]
    for i in range(50):  # a burst of events within one interval: still one refresh
        sched.pause_job("alpha") if i % 2 == 0 else sched.resume_job("alpha")
    renders = ctl.renders
    assert [ctl.poll(1.5 + k * 0.1) for k in range(1, 10)].count(True) == 1
    assert ctl.renders == renders + 1


def test_the_refresher_thread_follows_events_and_stops(sched: Scheduler, clock: FakeClock) -> None:
    panel = SchedulerPanel(sched, clock=clock, min_interval=0.05)
    try:
        assert any(t.name == "nbsched-panel" for t in threading.enumerate())
        sched.add_job(ok, "every 10s", name="alpha")
        wait_for(lambda: any("alpha" in r.info.value for r in panel.view._job_rows),
                 what="the new job in the panel, without a refresh call")
        clock.advance(10)
        wait_for(lambda: "succeeded" in panel.view._job_rows[0].info.value, what="last run")
    finally:
        panel.close()
    assert panel.controller.stopped
    assert not any(t.name == "nbsched-panel" for t in threading.enumerate())


def test_scheduler_shutdown_stops_the_panel(clock: FakeClock) -> None:
    s = Scheduler(clock=clock, timezone="UTC")
    s.start()
    panel = SchedulerPanel.of(s, clock=clock)
    s.shutdown()
    assert panel.controller.stopped
    wait_for(lambda: not any(t.name == "nbsched-panel" for t in threading.enumerate()),
             what="the refresher to end")
    panel.close()


def test_one_live_panel_per_scheduler_and_its_display_bundle(sched: Scheduler) -> None:
    sched.add_job(ok, "every 10s", name="alpha")
    first = nbsched.panel(sched)
    try:
        assert isinstance(first, SchedulerPanel)
        assert nbsched.panel(sched) is first and SchedulerPanel.of(sched) is first
        bundle = first._repr_mimebundle_()
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == (
            first.widget.model_id)
        assert "alpha" in bundle["text/html"] and "<table>" in bundle["text/html"]
        assert "alpha" in bundle["text/plain"]
    finally:
        first.close()
    second = nbsched.panel(sched)
    try:
        assert second is not first and not second.controller.stopped
        assert "application/vnd.jupyter.widget-view+json" not in first._repr_mimebundle_()
    finally:
        second.close()


def test_without_ipywidgets_the_panel_is_the_static_table(
    sched: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    sched.add_job(ok, "every 10s", name="alpha")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    for mod in ("nbsched.panel.controller", "nbsched.panel.view"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    shown = nbsched.panel(sched)
    assert isinstance(shown, JobTable)
    assert [r.name for r in shown.rows] == ["alpha"] and "install ipywidgets" in shown.caption


class Chatty:
    """A job that prints a line at each step and waits for the test between steps."""

    def __init__(self, steps: int) -> None:
        self.said = [threading.Event() for _ in range(steps)]
        self.go = [threading.Event() for _ in range(steps)]

    def __call__(self) -> None:
        for i, (said, go) in enumerate(zip(self.said, self.go, strict=True)):
            print(f"step {i + 1}")
            said.set()
            go.wait(10)

    def release(self) -> None:
        for go in self.go:
            go.set()


def test_a_running_runs_output_updates_in_the_history_until_its_record_shows(
    panel: SchedulerPanel, sched: Scheduler, clock: FakeClock
) -> None:
    ctl, view = panel.controller, panel.view
    job = Chatty(3)
    sched.add_job(job, "every 1h", name="chatty")
    run_id = sched.start_run("chatty")
    values: list[str] = []
    view.output.observe(lambda change: values.append(change.new), "value")
    t = 0.0
    try:
        view.tabs.selected_index = 1
        job.said[0].wait(10)
        ctl.select(run_id)
        assert "step 1" in view.output.value and "running" in view.detail.value
        sent = len(values)
        clock.advance(1)  # the duration moves; the output does not: not sent again
        assert ctl.poll(t := t + 1.0)
        assert len(values) == sent and "step 2" not in view.output.value
        job.go[0].set()
        job.said[1].wait(10)
        assert ctl.poll(t := t + 1.0)  # the next tick shows the new line, run still going
        assert "step 1\nstep 2" in view.output.value and "running" in view.detail.value
        assert len(values) == sent + 1
    finally:
        job.release()
    wait_for(lambda: not ctl.book.running(), 10, "the run to end")
    assert ctl.poll(t + 1.0)
    assert "succeeded" in view.detail.value and "running" not in view.detail.value
    assert "step 1\nstep 2\nstep 3" in view.output.value  # the record's output


def test_the_refresher_thread_streams_the_selected_runs_output(
    sched: Scheduler, clock: FakeClock
) -> None:
    panel = SchedulerPanel(sched, clock=clock, min_interval=0.05)
    job = Chatty(2)
    try:
        sched.add_job(job, "every 1h", name="chatty")
        run_id = sched.start_run("chatty")
        panel.view.tabs.selected_index = 1
        job.said[0].wait(10)
        panel.controller.select(run_id)
        # (the refresher has caught up with the events: the next refresh is the 1 s tick)
        wait_for(lambda: not panel.controller.throttle.dirty, 10, "a quiet panel")
        job.go[0].set()
        job.said[1].wait(10)
        # No event says the run printed: the refresher's tick brings it, no refresh call
        wait_for(lambda: "step 2" in panel.view.output.value, 10, "the second line")
        assert "running" in panel.view.detail.value
    finally:
        job.release()
        panel.close()
