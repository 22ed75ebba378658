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
