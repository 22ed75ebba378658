"""panel/view.py: real ipywidgets objects, no front end; their values, classes and traffic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbsched import Scheduler
from nbsched.panel.runbook import RunBook
from nbsched.panel.state import PanelState, RunDetail, snapshot
from nbsched.panel.view import PanelView
from nbsched.testing import FakeClock

from ._comms import counted_comms, updates


def ok() -> None:
    print("ok")


class Calls:
    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []
        self.filters: list[tuple[str, str]] = []
        self.selected: list[str] = []
        self.closed = 0


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def view(calls: Calls) -> Iterator[PanelView]:
    with counted_comms():
        v = PanelView(
            on_action=lambda a, n: calls.actions.append((a, n)),
            on_filter=lambda q, s: calls.filters.append((q, s)),
            on_select=calls.selected.append,
            on_close=lambda: setattr(calls, "closed", calls.closed + 1),
        )
        yield v
        v.close()


def state_of(sched: Scheduler, clock: FakeClock, **kw: object) -> PanelState:
    return snapshot(sched, clock.time(), RunBook(), **kw)  # type: ignore[arg-type]


def visible_rows(view: PanelView) -> list[object]:
    return [b for b in view.jobs.children if b.layout.display != "none"]


def test_contract_classes_labels_and_values(
    view: PanelView, sched: Scheduler, clock: FakeClock
) -> None:
    sched.add_job(ok, "every 10s", name="alpha")
    sched.add_job(ok, "every 1h", name="beta", paused=True)
    view.render(state_of(sched, clock))
    assert "nbsched-panel" in view.root._dom_classes
    rows = visible_rows(view)
    assert len(rows) == 2 and all("nbsched-job" in r._dom_classes for r in rows)
    alpha, beta = view._job_rows[:2]
    assert "alpha" in alpha.info.value and "beta" in beta.info.value
    assert [b.description for b in (alpha.pause, alpha.run, alpha.cancel, alpha.remove)] == [
        "Pause", "Run now", "Cancel", "Remove"]
    assert beta.pause.description == "Resume" and "paused" in beta.info.value
    assert alpha.cancel.disabled  # nothing in flight
    assert "in 10s" in alpha.info.value and "Every 10 seconds" in alpha.info.value
    assert "2 jobs" in view.head.value and "running" in view.head.value
    assert "alpha" in view.upcoming.value and "beta" not in view.upcoming.value
    # Only the shown tab is rendered: the timeline fills in once it is shown.
    assert view.timeline.value == ""
    view.tabs.selected_index = 2
    view.render(state_of(sched, clock))
    assert "<svg" in view.timeline.value and "alpha" in view.timeline.value


def test_rows_are_pooled_and_quiet_renders_send_nothing(
    calls: Calls, sched: Scheduler, clock: FakeClock
) -> None:
    for name in ("a", "b", "c"):
        sched.add_job(ok, "every 1h", name=name)
    with counted_comms() as sent:
        view = PanelView(lambda a, n: None, lambda q, s: None, lambda r: None, lambda: None)
        view.render(state_of(sched, clock))
        rows = list(view._job_rows)
        opened = sum(1 for kind, _ in sent if kind == "comm_open")
        sent.clear()
        view.render(state_of(sched, clock))
        assert sent == []  # same state: not one message
        view.render(state_of(sched, clock, query="b"))
        assert view._job_rows == rows and len(visible_rows(view)) == 1
        assert ">b<" in rows[0].info.value
        assert rows[1].info.value == rows[2].info.value == ""  # spare rows: hidden and blank
        assert not any(kind == "comm_open" for kind, _ in sent)  # no widget created
        sent.clear()
        view.render(state_of(sched, clock))
        assert len(visible_rows(view)) == 3 and view._job_rows == rows
        assert not any(kind == "comm_open" for kind, _ in sent)
        # One job paused: a handful of updates, one per widget that changed.
        sent.clear()
        sched.pause_job("b")
        view.render(state_of(sched, clock))
        changed = updates(sent)
        assert 1 <= len(changed) <= 4, changed  # b's texts, its Pause button, the header
        assert all(len(u["state"]) <= 2 for u in changed)  # held: one message per widget
        view.close()
    assert opened > 20  # (the tree is real: dozens of widgets)


def test_buttons_report_actions_with_a_confirm_step_for_remove(
    view: PanelView, calls: Calls, sched: Scheduler, clock: FakeClock
) -> None:
    sched.add_job(ok, "every 10s", name="alpha")
    sched.add_job(ok, "every 10s", name="gone", paused=True)
    view.render(state_of(sched, clock))
    alpha, gone = view._job_rows[:2]
    alpha.pause.click()
    gone.pause.click()  # labelled Resume
    alpha.run.click()
    assert calls.actions == [("pause", "alpha"), ("resume", "gone"), ("run", "alpha")]
    gone.remove.click()
    assert calls.actions[-1] != ("remove", "gone")  # not yet: asks first
    assert view.confirm.layout.display != "none" and "gone" in view.confirm_text.value
    keep = view.confirm.children[2]
    keep.click()
    assert view.confirm.layout.display == "none" and ("remove", "gone") not in calls.actions
    gone.remove.click()
    view.confirm.children[1].click()  # "Yes, remove"
    assert calls.actions[-1] == ("remove", "gone")
    view.search.value = "alp"
    view.filter.value = "paused"
    assert calls.filters == [("alp", "all"), ("alp", "paused")]


def test_history_detail_progress_and_status_line(
    view: PanelView, calls: Calls, sched: Scheduler, clock: FakeClock
) -> None:
    view.tabs.selected_index = 1
    state = state_of(sched, clock)
    detail = RunDetail(
        id="r1", job_name="nb", status="running", started="08:00:00", duration="3.00 s",
        output="", error="", output_path="out/nb-run.ipynb", progress=(2, 5),
    )
    view.render(_with_detail(state, detail))
    assert view.progress.layout.display != "none"
    assert (view.progress.value, view.progress.max) == (2, 5)
    assert "out/nb-run.ipynb" in view.detail.value and "<a href" in view.detail.value
    failed = RunDetail(
        id="r2", job_name="nb", status="failed", started="08:00:00", duration="1.00 s",
        output="partial <b>output</b>\n", error="Traceback...\nValueError: no", output_path=None,
        progress=None,
    )
    view.render(_with_detail(state, failed))
    assert view.progress.layout.display == "none"
    assert "partial &lt;b&gt;output&lt;/b&gt;" in view.output.value  # escaped
    assert "ValueError: no" in view.output.value
    view.set_status("No job named 'x'", error=True)
    assert "No job named" in view.status.value and "#c62828" in view.status.value
    view.set_status("")
    assert view.status.value == ""


def _with_detail(state: PanelState, detail: RunDetail) -> PanelState:
    from dataclasses import replace

    return replace(state, detail=detail)
