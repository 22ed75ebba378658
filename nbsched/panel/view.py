"""The widget tree of the panel, built once and then only re-valued.

:class:`PanelView` never touches a scheduler: it renders a :class:`~.state.PanelState` and
reports clicks through the callbacks it was given. Rows (jobs, runs) come from pools that
grow to the largest count seen and are hidden, not destroyed, when fewer are needed; a
refresh assigns only the trait values that changed, each widget's changes held into one
message (``hold_sync``), so a quiet refresh sends nothing and a busy one sends one update
per widget that changed.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .state import STATES, JobRow, PanelState, RunDetail, RunRow
from .timeline import STATUS_COLOURS, render_svg

__all__ = ["PanelView", "CSS"]

Action = Callable[[str, str], None]  # (action, job name): "pause" "resume" "run" "cancel" "remove"

#: scoped to the panel; an HTML widget may carry a style element, which JupyterLab applies
CSS = """<style>
.nbsched-panel { font-size: 12px; max-width: 1100px; }
.nbsched-panel .nbsched-head { font-size: 13px; }
.nbsched-panel .nbsched-job, .nbsched-panel .nbsched-run, .nbsched-panel .nbsched-cols {
  align-items: center; border-bottom: 1px solid var(--jp-border-color2, #eee); }
.nbsched-panel .nbsched-job:hover, .nbsched-panel .nbsched-run:hover {
  background: var(--jp-layout-color2, #f5f5f5); }
.nbsched-panel .nbsched-selected { background: var(--jp-brand-color3, #e3f2fd); }
.nbsched-panel .nbsched-cols .widget-html-content { font-weight: 600; color: #616161; }
.nbsched-panel .widget-html, .nbsched-panel .widget-html-content {
  margin: 0 4px 0 0; line-height: 22px; }
.nbsched-panel .nbsched-cells { display: flex; width: 100%; }
.nbsched-panel .nbsched-cell { min-width: 0; padding-right: 6px; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.nbsched-panel .widget-button { height: 22px; line-height: 22px; font-size: 11px;
  padding: 0 8px; margin: 1px 2px; }
.nbsched-panel .nbsched-badge { display: inline-block; padding: 0 6px; border-radius: 8px;
  line-height: 16px; font-size: 11px; }
.nbsched-panel .nbsched-detail .widget-html-content { white-space: normal; }
.nbsched-panel pre.nbsched-out { max-height: 260px; overflow: auto; margin: 4px 0;
  padding: 6px; background: var(--jp-layout-color2, #f7f7f7); white-space: pre-wrap; }
</style>"""

_STATE_BADGE: dict[str, tuple[str, str]] = {  # state -> (text colour, background)
    "active": ("#1b5e20", "#e8f5e9"),
    "running": ("#0d47a1", "#e3f2fd"),
    "failing": ("#b71c1c", "#ffebee"),
    "paused": ("#6d4c00", "#fff3c4"),
    "unbound": ("#4a148c", "#f3e5f5"),
    "finished": ("#424242", "#eeeeee"),
}
# job, state, schedule, last run, next run: preferred widths; cells shrink (the buttons never
# do) when the notebook is narrower than the row
_COLS = ("170px", "76px", "190px", "150px", "150px")
_ACTIONS = "272px"  # the row's buttons; the header keeps the same room so columns align


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(word: str, colours: tuple[str, str]) -> str:
    fg, bg = colours
    return f'<span class="nbsched-badge" style="color:{fg};background:{bg}">{_e(word)}</span>'


def _status_badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#616161")
    return _badge(status, ("#ffffff", colour)) if status else ""


def _set(widget: W.Widget, **values: Any) -> None:
    """Assign the values that differ, as one message."""
    changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
    if not changed:
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


def _show(widget: W.DOMWidget, visible: bool) -> None:
    _set(widget.layout, display=None if visible else "none")


def _cells(widths: tuple[str, ...], values: tuple[str, ...]) -> str:
    """One row's text columns as a single HTML value: a row that changes is then one
    message, not one per column. The header uses the same markup, so columns align."""
    spans = "".join(
        f"<span class='nbsched-cell' style='flex:1 1 {w}'>{v}</span>"
        for w, v in zip(widths, values, strict=True)
    )
    return f"<div class='nbsched-cells'>{spans}</div>"


def _info() -> W.HTML:
    return W.HTML(layout=W.Layout(flex="1 1 auto", min_width="200px"))


def _button(label: str, tip: str) -> W.Button:
    return W.Button(
        description=label, tooltip=tip, layout=W.Layout(width="auto", flex="0 0 auto")
    )


class _JobRowView:
    """One pooled row of the jobs table: the job's texts in one HTML, then its buttons."""

    def __init__(self, on_action: Action, on_remove: Callable[[str], None]) -> None:
        self.job_name = ""
        self.info = _info()
        self.pause = _button("Pause", "Stop firing this job until resumed")
        self.pause.layout.width = "68px"  # as wide as "Resume": the other buttons stay put
        self.run = _button("Run now", "Run once now, outside the schedule")
        self.cancel = _button("Cancel", "Stop the run in flight")
        self.remove = _button("Remove", "Delete this job and its run history")
        actions = W.HBox(
            [self.pause, self.run, self.cancel, self.remove],
            layout=W.Layout(flex=f"0 0 {_ACTIONS}"),
        )
        self.box = W.HBox([self.info, actions])
        self.box.add_class("nbsched-job")

        def pause_clicked(_: W.Button) -> None:
            on_action("resume" if self.pause.description == "Resume" else "pause", self.job_name)

        self.pause.on_click(pause_clicked)
        self.run.on_click(lambda _: on_action("run", self.job_name))
        self.cancel.on_click(lambda _: on_action("cancel", self.job_name))
        self.remove.on_click(lambda _: on_remove(self.job_name))

    def render(self, row: JobRow) -> None:
        self.job_name = row.name
        last = _status_badge(row.last_status)
        if row.last_status:
            last += f" <small>{_e(row.last_when)}</small>"
        nxt = (
            f"{_e(row.next_in)} <small style='color:#757575'>{_e(row.next_at)}</small>"
            if row.next_ts is not None else "<small style='color:#9e9e9e'>—</small>"
        )
        _set(self.info, value=_cells(_COLS, (
            f"<b title='{_e(row.name)}'>{_e(row.name)}</b>",
            _badge(row.state, _STATE_BADGE[row.state]),
            f"<span title='{_e(row.schedule)}'>{_e(row.schedule)}</span>",
            last or "<small style='color:#9e9e9e'>never ran</small>",
            nxt,
        )))
        _set(self.pause, description="Resume" if row.paused else "Pause",
             button_style="success" if row.paused else "")
        _set(self.run, disabled=row.unbound)
        _set(self.cancel, disabled=row.running_run_id is None)


_RUN_COLS = ("92px", "200px", "110px", "140px")  # status, job, started, duration


class _RunRowView:
    """One pooled row of the history list."""

    def __init__(self, on_select: Callable[[str], None]) -> None:
        self.run_id = ""
        self.info = _info()
        self.show = _button("Show", "Show this run's output and error")
        self.box = W.HBox([self.info, self.show])
        self.box.add_class("nbsched-run")
        self.show.on_click(lambda _: on_select(self.run_id))

    def render(self, row: RunRow, selected: bool) -> None:
        self.run_id = row.id
        classes = ("nbsched-run", "nbsched-selected") if selected else ("nbsched-run",)
        _set(self.box, _dom_classes=classes)
        extra = ""
        if row.progress is not None:
            done, total = row.progress
            extra = f" · cell {done}/{total}" if total else f" · cell {done}"
        _set(self.info, value=_cells(_RUN_COLS, (
            _status_badge(row.status), f"<b>{_e(row.job_name)}</b>", _e(row.started),
            _e(row.duration + extra),
        )))


class PanelView:
    """The panel's widgets. ``root`` (CSS class ``nbsched-panel``) is what gets displayed.

    :param on_action: called with (action, job name) for the row buttons, after the confirm
        step for ``"remove"``
    :param on_filter: called with (search text, state) when either changes
    :param on_select: called with a run id when a run's details are asked for
    :param on_close: called when the Close button is clicked
    :param on_refresh: called when the shown tab changes (only the shown tab is rendered:
        the others would send updates nobody sees)
    """

    def __init__(
        self,
        on_action: Action,
        on_filter: Callable[[str, str], None],
        on_select: Callable[[str], None],
        on_close: Callable[[], None],
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        self._on_action = on_action
        self._on_select = on_select
        self._confirming = ""
        self.head = W.HTML()
        self.head.add_class("nbsched-head")
        close = _button("Close", "Stop this panel's updates and remove it")
        close.on_click(lambda _: on_close())
        self.search = W.Text(
            placeholder="search jobs by name", continuous_update=True,
            layout=W.Layout(width="220px"),
        )
        self.filter = W.Dropdown(
            options=[("all states", "all"), *((s, s) for s in STATES)], value="all",
            layout=W.Layout(width="130px"),
        )

        def filter_changed(_: object) -> None:
            on_filter(self.search.value, self.filter.value)

        self.search.observe(filter_changed, "value")
        self.filter.observe(filter_changed, "value")
        self.status = W.HTML()
        self.status.add_class("nbsched-status")
        self.confirm_text = W.HTML()
        yes = _button("Yes, remove", "Delete the job and its run history")
        yes.button_style = "danger"
        keep = _button("Keep", "Do not remove")
        yes.on_click(lambda _: self._confirmed(True))
        keep.on_click(lambda _: self._confirmed(False))
        self.confirm = W.HBox([self.confirm_text, yes, keep], layout=W.Layout(display="none"))
        self.confirm.add_class("nbsched-confirm")

        titles = ("Job", "State", "Schedule", "Last run", "Next run")
        header = _info()
        header.value = _cells(_COLS, titles)
        cols = W.HBox([header, W.HTML(layout=W.Layout(flex=f"0 0 {_ACTIONS}"))])
        cols.add_class("nbsched-cols")
        self._job_rows: list[_JobRowView] = []
        self.jobs = W.VBox()
        self.more = W.HTML()

        self.upcoming = W.HTML()
        self._run_rows: list[_RunRowView] = []
        self.runs = W.VBox()
        self.detail = W.HTML()
        self.detail.add_class("nbsched-detail")
        # The selected run's output and error: a widget of its own, so that a running run's
        # ticking duration does not send its output again every second (only new output does)
        self.output = W.HTML()
        self.output.add_class("nbsched-detail")
        self.progress = W.IntProgress(
            value=0, min=0, max=1, description="cells", layout=W.Layout(display="none")
        )
        self.timeline = W.HTML()
        history = W.VBox([self.runs, self.progress, self.detail, self.output])
        self.tabs = W.Tab(
            children=[self.upcoming, history, self.timeline],
            titles=("Upcoming", "History", "Timeline"),
        )
        if on_refresh is not None:
            self.tabs.observe(lambda _: on_refresh(), "selected_index")
        top = W.HBox([self.head, close], layout=W.Layout(justify_content="space-between"))
        self.root = W.VBox([
            W.HTML(CSS), top, W.HBox([self.search, self.filter, self.status]),
            self.confirm, cols, self.jobs, self.more, self.tabs,
        ])
        self.root.add_class("nbsched-panel")
        self._selected: str | None = None

    # -- events from the front end ----------------------------------------------------------

    def _ask_remove(self, name: str) -> None:
        self._confirming = name
        _set(self.confirm_text, value=f"Remove job <b>{_e(name)}</b> and its run history?")
        _show(self.confirm, True)

    def _confirmed(self, yes: bool) -> None:
        name, self._confirming = self._confirming, ""
        _show(self.confirm, False)
        if yes and name:
            self._on_action("remove", name)

    # -- rendering --------------------------------------------------------------------------

    def set_status(self, text: str, error: bool = False) -> None:
        """Show one line of feedback (an action's result or error) next to the search box."""
        colour = "#c62828" if error else "#2e7d32"
        value = f"<span style='color:{colour}'>{_e(text)}</span>" if text else ""
        _set(self.status, value=value)

    def render(self, state: PanelState, tz: Any = None) -> None:
        """Show ``state``: assign what changed, nothing else."""
        tab = self.tabs.selected_index
        with self.root.hold_sync():
            self._render_head(state)
            self._render_jobs(state)
            if tab == 0:
                self._render_upcoming(state)
            elif tab == 1:
                self._render_runs(state)
                self._render_detail(state.detail)
            elif tab == 2:
                _set(self.timeline, value=render_svg(state, tz))

    def _render_head(self, state: PanelState) -> None:
        if not state.running:
            dot, word = "#9e9e9e", "stopped"
        elif not state.healthy:
            dot, word = "#c62828", f"fault: {state.error}"
        else:
            dot, word = "#2e7d32", "running"
        counts = " · ".join(f"{n} {s}" for s, n in state.counts.items() if n)
        _set(self.head, value=(
            f"<b>nbsched</b> <span style='color:{dot}'>●</span> {_e(word)} · "
            f"{state.total} job{'s' if state.total != 1 else ''}"
            + (f" <small style='color:#616161'>({_e(counts)})</small>" if counts else "")
        ))

    def _render_jobs(self, state: PanelState) -> None:
        while len(self._job_rows) < len(state.jobs):
            self._job_rows.append(_JobRowView(self._on_action, self._ask_remove))
        for view, row in zip(self._job_rows, state.jobs, strict=False):
            view.render(row)
        boxes = tuple(v.box for v in self._job_rows)
        _set(self.jobs, children=boxes)
        for view in self._job_rows[len(state.jobs):]:  # spare rows: hidden and blank
            view.job_name = ""
            _set(view.info, value="")
        for i, view in enumerate(self._job_rows):
            _show(view.box, i < len(state.jobs))
        if not state.total:
            more = "<i>No jobs yet: <code>%schedule add …</code> or <code>%%schedule</code>.</i>"
        elif not state.matching:
            more = "<i>No job matches the search or filter.</i>"
        elif state.matching > len(state.jobs):
            more = (f"<small>{len(state.jobs)} of {state.matching} matching jobs shown; "
                    "narrow them with the search box.</small>")
        else:
            more = ""
        _set(self.more, value=more)

    def _render_upcoming(self, state: PanelState) -> None:
        if not state.upcoming:
            _set(self.upcoming, value="<i>Nothing scheduled.</i>")
            return
        rows = "".join(
            f"<tr><td style='padding:0 10px 0 0'>{_e(u.at)}</td>"
            f"<td style='padding:0 10px 0 0'><b>{_e(u.countdown)}</b></td>"
            f"<td style='padding:0 10px 0 0'>{_e(u.job_name)}</td>"
            f"<td style='color:#616161'>{_e(u.schedule)}</td></tr>"
            for u in state.upcoming
        )
        head = "".join(f"<th style='text-align:left;padding-right:10px'>{h}</th>"
                       for h in ("Time", "In", "Job", "Schedule"))
        _set(self.upcoming, value=f"<table><tr>{head}</tr>{rows}</table>")

    def _render_runs(self, state: PanelState) -> None:
        while len(self._run_rows) < len(state.runs):
            self._run_rows.append(_RunRowView(self._select))
        selected = state.detail.id if state.detail else self._selected
        for view, row in zip(self._run_rows, state.runs, strict=False):
            view.render(row, row.id == selected)
        _set(self.runs, children=tuple(v.box for v in self._run_rows))
        for i, view in enumerate(self._run_rows):
            _show(view.box, i < len(state.runs))

    def _select(self, run_id: str) -> None:
        self._selected = run_id
        self._on_select(run_id)

    def _render_detail(self, detail: RunDetail | None) -> None:
        if detail is None:
            _set(self.detail, value="<small style='color:#757575'>Select a run (Show) to see "
                                    "its output.</small>")
            _set(self.output, value="")
            _show(self.progress, False)
            return
        parts = [
            f"<div>{_status_badge(detail.status)} <b>{_e(detail.job_name)}</b> · started "
            f"{_e(detail.started)} · {_e(detail.duration)} <small style='color:#9e9e9e'>"
            f"{_e(detail.id)}</small></div>"
        ]
        if detail.output_path:
            parts.append(f"<div>Executed notebook: {_notebook_link(detail.output_path)}</div>")
        if detail.status == "running":
            parts.append("<div><i>Running; its output so far"
                         + (":" if detail.output else " is empty.") + "</i></div>")
        _set(self.detail, value="".join(parts))
        out = []
        if detail.output:
            out.append(f"<pre class='nbsched-out'>{_e(detail.output[-20000:])}</pre>")
        if detail.error:
            out.append(f"<pre class='nbsched-out' style='color:#b71c1c'>"
                       f"{_e(detail.error[-20000:])}</pre>")
        if not detail.output and not detail.error and detail.status != "running":
            out.append("<small style='color:#757575'>(no output)</small>")
        _set(self.output, value="".join(out))
        if detail.progress is not None:
            done, total = detail.progress
            _set(self.progress, max=max(total, done, 1), value=done)
        _show(self.progress, detail.progress is not None)

    def close(self) -> None:
        """Close every widget of the panel (the front end removes the view)."""
        _close_tree(self.root)


def _close_tree(widget: W.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if isinstance(sub, W.Widget):
            sub.close()
    widget.close()


def _notebook_link(path: str) -> str:
    """A link JupyterLab opens when the executed notebook is under the kernel's working
    directory (output links resolve relative to the notebook), else the path as text."""
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    if rel.startswith(".."):
        return f"<code>{_e(path)}</code>"
    return f"<a href='{_e(rel)}' target='_blank'>{_e(rel)}</a>"
