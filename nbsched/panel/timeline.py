"""The timeline: recent runs per job, coloured by status, and the next fire times ahead.

Plain SVG text, put into an ``ipywidgets.HTML``. Why not a plotting widget: SVG inside HTML
needs no front-end package beyond ipywidgets itself, renders the same in JupyterLab, in
Notebook 7 and in a saved notebook on GitHub or nbviewer (it is just markup in the output),
and regenerating a few hundred bytes once a second costs nothing next to a plotting
library's round trips. No scripts and no external references, so sanitizers keep it.
"""

from __future__ import annotations

import html
from datetime import datetime, tzinfo

from ..jobs import RunStatus
from .state import PanelState

__all__ = ["STATUS_COLOURS", "render_svg"]

#: one colour per run status, shared with the history list and the state badges
STATUS_COLOURS: dict[str, str] = {
    RunStatus.succeeded.value: "#2e7d32",
    RunStatus.failed.value: "#c62828",
    RunStatus.crashed.value: "#8e0000",
    RunStatus.timed_out.value: "#ef6c00",
    RunStatus.missed.value: "#9e9e9e",
    RunStatus.skipped.value: "#bdbdbd",
    RunStatus.cancelled.value: "#6d4c41",
    RunStatus.running.value: "#1565c0",
}

_LABEL_W = 150  # px for the job names on the left
_PLOT_W = 520
_LANE_H = 22
_TOP = 18  # room for the time labels


def _x(ts: float, start: float, end: float) -> float:
    return _LABEL_W + (ts - start) / (end - start) * _PLOT_W


def _tick_text(ts: float, span: float, tz: tzinfo | None) -> str:
    fmt = "%H:%M:%S" if span < 600 else "%H:%M" if span < 2 * 86400 else "%d %b"
    return datetime.fromtimestamp(ts, tz).strftime(fmt)


def render_svg(state: PanelState, tz: tzinfo | None = None) -> str:
    """The timeline of ``state.lanes`` as an ``<svg>`` element (an empty-state note when
    there is nothing to draw)."""
    if not state.lanes:
        return '<div class="nbsched-timeline-empty">No jobs to draw.</div>'
    start, end = state.window
    now = state.now
    lanes_bottom = _TOP + _LANE_H * len(state.lanes)
    height = lanes_bottom + 24  # + the legend
    width = _LABEL_W + _PLOT_W + 40
    out = [
        f'<svg class="nbsched-timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'style="font-family:var(--jp-ui-font-family,sans-serif);font-size:11px">'
    ]
    span = end - start
    for i in range(5):
        ts = start + span * i / 4
        x = _x(ts, start, end)
        out.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{lanes_bottom}" '
            'stroke="#e0e0e0"/>'
            f'<text x="{x:.1f}" y="{_TOP - 7}" text-anchor="middle" fill="#757575">'
            f"{_tick_text(ts, span, tz)}</text>"
        )
    xn = _x(now, start, end)
    out.append(
        f'<line x1="{xn:.1f}" y1="{_TOP - 4}" x2="{xn:.1f}" y2="{lanes_bottom}" '
        'stroke="#1565c0" stroke-dasharray="3,2"><title>now</title></line>'
    )
    for row, lane in enumerate(state.lanes):
        y = _TOP + row * _LANE_H + _LANE_H / 2
        name = lane.job_name if len(lane.job_name) <= 22 else lane.job_name[:21] + "…"
        out.append(
            f'<text x="4" y="{y + 4:.1f}" fill="#424242"><title>{html.escape(lane.job_name)}'
            f"</title>{html.escape(name)}</text>"
            f'<line x1="{_LABEL_W}" y1="{y:.1f}" x2="{_LABEL_W + _PLOT_W}" y2="{y:.1f}" '
            'stroke="#f0f0f0"/>'
        )
        for begin, finish, status in lane.marks:
            if begin < start:
                continue
            colour = STATUS_COLOURS.get(status.value, "#9e9e9e")
            x0 = _x(begin, start, end)
            x1 = _x(min(finish if finish is not None else now, end), start, end)
            w = max(4.0, x1 - x0)
            out.append(
                f'<rect x="{x0 - 2:.1f}" y="{y - 6:.1f}" width="{w:.1f}" height="12" rx="2" '
                f'fill="{colour}"><title>{status.value}</title></rect>'
            )
        for ts in lane.ahead:
            x = _x(ts, start, end)
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="none" stroke="#1565c0" '
                'stroke-width="1.5"><title>next fire</title></circle>'
            )
    out.append(_legend(lanes_bottom + 16))
    out.append("</svg>")
    return "".join(out)


def _legend(y: float) -> str:
    parts, x = [], float(_LABEL_W)
    for status in ("succeeded", "failed", "timed_out", "cancelled", "missed"):
        parts.append(
            f'<rect x="{x:.0f}" y="{y - 8:.0f}" width="10" height="10" rx="2" '
            f'fill="{STATUS_COLOURS[status]}"/><text x="{x + 14:.0f}" y="{y:.0f}" '
            f'fill="#616161">{status.replace("_", " ")}</text>'
        )
        x += 22 + 7 * len(status)
    parts.append(
        f'<circle cx="{x + 5:.0f}" cy="{y - 3:.0f}" r="4" fill="none" stroke="#1565c0" '
        f'stroke-width="1.5"/><text x="{x + 14:.0f}" y="{y:.0f}" fill="#616161">next fire</text>'
    )
    return "".join(parts)
