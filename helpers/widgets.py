"""Live views for the notebook: call cards, process cards, gauges.

Every view is an ipywidget for the browser *and* a stable one-line `text/plain` for nbval and for
anyone reading the committed notebook: the widget part changes live, the text is what was true
when the cell ran. Updates come from the puppet's watcher thread, so a card flips to its result
without re-running a cell. Introduced in 00-start-here.
"""

from __future__ import annotations

import html

import ipywidgets as w
from IPython.display import display

__all__ = ["Card", "show", "show_call"]

_STYLE = (
    "border-left:4px solid {color};padding:4px 10px;margin:2px 0;font-family:var(--jp-code-font-family,monospace);"
    "font-size:12.5px;background:var(--jp-layout-color2,#f5f5f5)"
)
COLORS = {"blocked": "#e6a100", "done": "#2e7d32", "error": "#c62828", "info": "#1565c0", "gone": "#757575"}


class Card:
    """A one-line live card: a colored bar, a title and a line of text, updatable from any thread."""

    def __init__(self, title: str, text: str, kind: str = "info"):
        self.widget = w.HTML()
        self.title, self.text, self.kind = title, text, kind
        self._render()

    def update(self, text: str, kind: str | None = None) -> None:
        self.text, self.kind = text, kind or self.kind
        self._render()

    def _render(self) -> None:
        style = _STYLE.format(color=COLORS.get(self.kind, COLORS["info"]))
        self.widget.value = (f'<div style="{style}"><b>{html.escape(self.title)}</b> '
                             f"{html.escape(self.text)}</div>")

    def plain(self) -> str:
        return f"{self.title} {self.text}"

    def _ipython_display_(self) -> None:
        show(self.widget, self.plain())


def show(widget: w.Widget, plain: str) -> None:
    """Display `widget` with `plain` as its text/plain form (what nbval compares)."""
    display({"text/plain": plain, "application/vnd.jupyter.widget-view+json": {
        "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}, raw=True)


def show_call(call) -> None:
    """A card for a pending call: where it sleeps now, and later, by itself, what it returned."""
    card = Card(f"{call.puppet.name}:", f"{call.label} {call.blocked_in}", "blocked")

    def finished():
        error = not call._future.ok
        card.update(call.outcome().split(": ", 1)[1], "error" if error else "done")

    call._future.on_done(finished)
    card._ipython_display_()
