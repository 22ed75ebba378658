"""Rows and key/value pairs as aligned plain text and as plain HTML tables.

The HTML has no scripts and no ``<style>`` blocks, only inline ``style`` attributes that
merely help (GitHub strips them and the table still reads well).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from wcwidth import wcswidth, wcwidth

__all__ = [
    "Displayable",
    "LEFT",
    "PRE",
    "escape",
    "html_table",
    "kv_html",
    "kv_text",
    "text_table",
    "width",
]

LEFT = ' style="text-align:left;vertical-align:top"'
PRE = ' style="white-space:pre-wrap;margin:0;text-align:left"'

#: widest column of a plain-text table; longer cells end in "…"
MAX_WIDTH = 60


def escape(value: object) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: 2 for each emoji or CJK character, 0 for
    combining marks (``len`` counts characters, which misaligns them)."""
    w = wcswidth(text)
    return w if w >= 0 else sum(max(0, wcwidth(c)) for c in text)  # -1: control characters


def _fit(text: str, w: int) -> str:
    """``text`` cut to ``w`` columns (ending in "…" when cut) and padded to ``w``."""
    if width(text) > w:
        out, used = [], 0
        for ch in text:
            cw = max(0, wcwidth(ch))
            if used + cw > w - 1:
                break
            out.append(ch)
            used += cw
        text = "".join(out) + "…"
    return text + " " * (w - width(text))


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned with spaces under a header and a rule of dashes."""
    widths = [width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], width(cell))
    widths = [min(w, MAX_WIDTH) for w in widths]

    def line(cells: Sequence[str]) -> str:
        out = [_fit(cell, w) for cell, w in zip(cells, widths, strict=True)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A table; ``rows`` and ``caption`` hold HTML already escaped."""
    head = "".join(f"<th{LEFT}>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td{LEFT}>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption{LEFT}>{caption}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_html(pairs: Sequence[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already escaped."""
    rows = "".join(f"<tr><th{LEFT}>{escape(k)}</th><td{LEFT}>{v}</td></tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def kv_text(pairs: Sequence[tuple[str, str]]) -> str:
    """Keys in a column, values after them; a value's further lines are indented under it."""
    keys = max((width(k) for k, _ in pairs), default=0)
    out = []
    for k, v in pairs:
        lines = v.splitlines() or [""]
        out.append(f"{_fit(k, keys)}  {lines[0]}")
        out.extend(" " * (keys + 2) + ln for ln in lines[1:])
    return "\n".join(out)


class Displayable:
    """Plain-text ``repr`` everywhere, and ``_repr_pretty_`` for IPython's text/plain;
    subclasses write ``_text`` (and ``_repr_html_``)."""

    __slots__ = ()

    def _text(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._text()

    def __str__(self) -> str:
        return self._text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._text())
