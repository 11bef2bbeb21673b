"""Clicks on the plotly figures of a live view that reach the kernel while a notebook cell awaits the search.

A `FigureWidget` tells the kernel about a click by syncing a trait from the browser. The browser's widget library
(ipywidgets) sends a model's syncs one at a time: the next waits until the kernel reports itself idle for the
previous one. While a cell awaits `dash.call(...)`, the kernel handles widget messages at once (ipykernel >= 7.4,
what lets Stop work under Run All) and reports no status for them, so after a figure's first sync (its view
reports its layout once drawn) every later one waits forever: a click on the live dashboard never arrived, during
the search, while paused, or after it.

`ClickRelay` listens to plotly's own `plotly_click` event on every figure drawn inside its view's dashboard (or
replay) and sends the clicked point's `customdata` as a custom widget message, as a Button sends its click: those
are never held back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as widgets

SCOPE = "nasviz-view"
"""CSS class of the widget whose plotly figures a relay listens to (the dashboard's and the replay's root)."""

_ESM = """
export default {
  render({ model, el }) {
    const mark = Symbol('nasviz-click');
    const listen = (root) => {
      for (const gd of root.querySelectorAll('.js-plotly-plot')) {
        if (typeof gd.on !== 'function' || !gd._ev) continue;
        if (gd._ev.listeners('plotly_click').some((f) => f[mark])) continue;  // a new plot drops old listeners
        const send = (event) => {
          const point = event && event.points && event.points[0];
          if (point && point.customdata !== undefined) model.send({event: 'click', customdata: point.customdata});
        };
        send[mark] = true;
        gd.on('plotly_click', send);
      }
    };
    let observer = null;
    let stopped = false;
    const start = () => {  // once the view is in the page: listen to the figures of its dashboard, as they come
      if (stopped) return;
      if (!el.isConnected) { setTimeout(start, 200); return; }
      const root = el.closest('.SCOPE') || el.closest('.nasviz-explorer') || el.parentElement;
      let queued = false;
      observer = new MutationObserver(() => {
        if (queued) return;
        queued = true;
        requestAnimationFrame(() => { queued = false; listen(root); });
      });
      observer.observe(root, {childList: true, subtree: true});
      listen(root);
    };
    start();
    return () => { stopped = true; if (observer) observer.disconnect(); };
  },
};
""".replace("'.SCOPE'", f"'.{SCOPE}'")


class ClickRelay(anywidget.AnyWidget):
    """An invisible widget: `on_click(customdata)` is called, in the kernel, for every click on a point of a plotly
    figure of the view it is displayed in (the first `SCOPE` ancestor)."""

    _esm = _ESM

    def __init__(self, on_click: Callable[[Any], None]) -> None:
        super().__init__(layout=widgets.Layout(width="0px", height="0px", overflow="hidden"))
        self.on_msg(lambda _widget, content, _buffers: on_click(content.get("customdata"))
                    if isinstance(content, dict) and content.get("event") == "click" else None)
