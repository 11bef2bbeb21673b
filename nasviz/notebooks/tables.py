"""HTML tables that survive papermill and the HTML export (plain HTML, no widget state)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any


def display_html(text: str):
    from IPython.display import HTML

    return HTML(text)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    elif value is None:
        text = ""
    else:
        text = str(value)
    return html.escape(text)


def html_table(rows: Sequence[dict], columns: Sequence[str] | None = None, caption: str | None = None):
    """A small HTML table (an IPython `HTML` object) of dicts; numbers are formatted, text escaped."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    style = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
    head = "".join(f"<th style='{style}'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{style};white-space:nowrap'>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    cap = f"<caption style='text-align:left;font-weight:bold'>{html.escape(caption)}</caption>" if caption else ""
    return display_html(f"<table style='border-collapse:collapse;font-size:13px'>{cap}<tr>{head}</tr>{body}</table>")
