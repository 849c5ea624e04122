"""Live views for the notebook: call cards, process cards, gauges.

Every view is an ipywidget for the browser *and* a stable one-line `text/plain` for nbval and for
anyone reading the committed notebook: the widget part changes live, the text is what was true
when the cell ran. Updates come from the puppet's reader thread, so a card flips to its result
without re-running a cell. Uses only the public side of `helpers.puppet`. Introduced in 00-start-here.
"""

from __future__ import annotations

import html
import os
import signal
import threading
import time

import ipywidgets as w
from IPython.display import display

from helpers import observe
from helpers.remote import RemoteSocket

__all__ = ["Card", "Gauge", "ProcessCard", "show", "show_call"]

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
        lines = "<br>".join(html.escape(line) for line in self.text.split("\n"))
        self.widget.value = f'<div style="{style}"><b>{html.escape(self.title)}</b> {lines}</div>'

    def plain(self) -> str:
        """The title, then the text; a text of several lines is indented under its first."""
        return f"{self.title} " + self.text.replace("\n", "\n" + " " * (len(self.title) + 1))

    def _ipython_display_(self) -> None:
        show(self.widget, self.plain())


def show(widget: w.Widget, plain: str) -> None:
    """Display `widget` with `plain` as its text/plain form (what nbval compares)."""
    display({"text/plain": plain, "application/vnd.jupyter.widget-view+json": {
        "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}, raw=True)


def show_call(call) -> None:
    """A card for a pending call: where it sleeps now, and later, by itself, what it returned, with times.

    A socket it returned is shown as it is now: the card redraws when that socket is closed. A card
    that flips after its own cell has run is told of in the output of the cell that made it flip.
    """
    card = Card(f"{call.puppet.name}:", "\n".join(call.timeline()), "blocked" if not call.done() else "done")

    def redraw(_=None) -> None:
        card.update("\n".join(call.timeline()), "done" if call.status == "returned" else "error")

    def finished(call) -> None:
        redraw()
        for sock in _sockets_in(call.result(0) if call.status == "returned" else None):
            sock.add_close_callback(redraw)

    if not call.done():
        _FlipNotes.watch(call)
    else:
        _FlipNotes.shown_now.add(id(call))  # shown again in this cell: its card tells the ending
    call.add_done_callback(finished)
    show(card.widget, card.plain())


class _FlipNotes:
    """One line in the output of the cell during which a card of an earlier cell flipped.

    A card shown above the cell the student is at changes out of sight, and a committed notebook
    keeps only what each card showed when its cell ran; so after each cell, each card of an earlier
    cell that is still waiting is given a moment to settle (its call finishes, or its thread is seen
    asleep again), and each call that finished during this cell gets one line here:
    `(the accept() shown above, in server's card, returned ... at 2.31 s)`. A cell that shows the
    outcome itself (`result()`, `outcome()`, the call displayed again) needs no line: the note is
    left out, so what a cell prints does not depend on whether a timer fired before it began.
    """

    watched: list = []  # [call, cell it was shown in, cell during which it finished, call.told when this cell began]
    shown_now: set[int] = set()  # ids of finished calls displayed again in this cell
    cell: int | None = None  # cells run since the first card, counted here: nbval keeps no history

    @classmethod
    def watch(cls, call) -> None:
        shell = _shell()
        if shell is None:
            return
        if cls.cell is None:
            cls.cell = 0
            shell.events.register("pre_run_cell", cls.before_cell)
            shell.events.register("post_run_cell", cls.after_cell)
        entry = [call, cls.cell, None, call.told]
        cls.watched.append(entry)
        call.add_done_callback(lambda _: entry.__setitem__(2, cls.cell))

    @classmethod
    def before_cell(cls, _info=None) -> None:
        cls.cell += 1
        cls.shown_now.clear()
        for entry in cls.watched:
            entry[3] = entry[0].told

    @classmethod
    def after_cell(cls, _result=None) -> None:
        cell = cls.cell
        for call, shown_in, _, _ in cls.watched:
            if shown_in != cell and not call.done() and call.puppet.alive and call.snapshot is not None:
                observe.wait_until(lambda call=call: call.done() or _asleep_twice(call), 1.0)
        for entry in list(cls.watched):
            call, shown_in, finished_in, told = entry
            if finished_in is None:
                continue
            cls.watched.remove(entry)
            if finished_in == cell and shown_in != cell and call.told == told and id(call) not in cls.shown_now:
                print(f"(the {call.label} shown above, in {call.puppet.name}'s card, {call.timeline()[-1][3:]})")


def _asleep_twice(call) -> bool:
    """The call's thread is seen asleep in a system call of its own in two readings in a row."""
    first = observe.blocked_in_call(call.puppet.pid, call.tid, call.puppet.own_fds)
    return first is not None and first == observe.blocked_in_call(call.puppet.pid, call.tid, call.puppet.own_fds)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _sockets_in(value):
    if isinstance(value, RemoteSocket):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _sockets_in(item)


_STATES = {"R": "running", "S": "sleeping", "D": "disk sleep", "Z": "zombie", "T": "stopped", "gone": "exited"}


class ProcessCard:
    """Each thread of a process: its state, the system call it is in, and wchan, kept up to date.

        ProcessCard(srv)      # a puppet: the threads the notebook drives (main, then srv.thread()s),
                              #   and for a forked one, whom it was forked from
        ProcessCard(pid)      # any process: every thread, named by /proc/<pid>/task/<tid>/comm

    The table in the browser refreshes by itself while the process lives (a daemon thread reads
    /proc a few times a second and stops when the process is gone); the text/plain form is the
    reading taken when the card was displayed, so a committed notebook shows what was true then.
    A puppet thread sleeping in its own command pipe, or on a lock, is shown as idle: it is
    waiting for the notebook's next call, not in a call of ours. A card that outlives its process
    keeps its story: when it exited (timed from the first card of that process), how (a puppet's
    exit status or signal), and what each thread was last seen doing; a card made after the end
    says the same in its text.
    """

    REFRESH = 0.2  # seconds between readings of /proc while displayed

    def __init__(self, target):
        if isinstance(target, int):
            self.pid, self.name, self._own_fds, self._named = target, _comm(target, target), (), None
        else:
            self.pid, self.name, self._own_fds, self._named = target.pid, target.name, target.own_fds, target.threads
        # a puppet knows how its process ended; a bare pid, or another object that names threads, may not
        self._returncode = lambda: getattr(target, "returncode", None)
        self._origin = getattr(target, "origin", "")  # a forked puppet: ", forked from server (pid 1234)"
        self._story = _LIVES.setdefault(self.pid, {"since": time.monotonic(), "last": None, "ended": None})
        self.widget = w.HTML()
        # A thread that just finished a call runs for a moment on its way back to idle: take the
        # reading once no thread is caught running, so the text shown does not depend on timing.
        self._rows = observe.wait_until(self._settled, 1.0) or self.read()
        self.widget.value = self._html(self._rows)

    def _settled(self):
        rows = self.read()
        return rows if all(not state.startswith("R") for _, state, _, _ in rows) else None

    def _threads(self) -> list[tuple[str, int]]:
        if self._named is not None:
            return self._named()
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return [(self.name, self.pid)]
        return [(_comm(self.pid, tid) + ("" if tid == self.pid else f" (tid {tid})"), tid) for tid in tids]

    def read(self) -> list[tuple[str, str, str, str]]:
        """One reading: (thread, state, what it does, wchan) per thread."""
        rows = []
        for name, tid in self._threads():
            snap = observe.snapshot(self.pid, tid)
            state = f"{snap.state} ({_STATES.get(snap.state, '?')})" if snap.state != "gone" else "exited"
            if snap.state == "gone":
                doing, wchan = "-", "-"
            elif self._named is not None and snap.sleeping and \
                    observe.blocked_in_call(self.pid, tid, self._own_fds) is None:
                doing, wchan = "idle, waiting for the next call", "-"
            elif snap.sleeping and snap.syscall:
                doing, wchan = f"{snap.syscall}({snap.shown_args})", snap.wchan or "-"
            else:
                doing, wchan = _STATES.get(snap.state, snap.state), "-"
            rows.append((name, state, doing, wchan))
        if any(state != "exited" for _, state, _, _ in rows):
            self._story["last"], self._story["ended"] = rows, None  # None: a pid reused by a new process
        elif self._story["ended"] is None:
            self._story["ended"] = time.monotonic()
        return rows

    def epitaph(self) -> list[str]:
        """Once the process is gone: when and how it exited, and what each thread was last seen doing."""
        if self._story["ended"] is None:
            return []
        rc = self._returncode()
        if rc is None:
            how = ""
        elif rc < 0:
            how = f" (killed by {signal.Signals(-rc).name})"
        else:
            how = f" (status {rc})"
        if self._story["last"] is None:  # no card saw it alive: no moment to tell
            return [f"exited{how}"]
        lines = [f"exited at {self._story['ended'] - self._story['since']:.2f} s{how}"]
        for name, _, doing, _ in self._story["last"] or ():
            lines.append(f"last seen: {name}  {doing}")
        return lines

    def plain(self) -> str:
        width = max(len(r[0]) for r in self._rows)
        doing = max(len(r[2]) for r in self._rows)
        lines = [f"{self.name} (pid {self.pid}){self._origin}"]
        for n, s, d, c in self._rows:
            wchan = f"  wchan {c}" if c != "-" else ""
            lines.append(f"  {n:<{width}}  {s:<13} {d:<{doing}}{wchan}".rstrip())
        lines.extend(f"  {line}" for line in self.epitaph())
        return "\n".join(lines)

    def _html(self, rows) -> str:
        alive = any(r[1] != "exited" for r in rows)
        color = COLORS["blocked"] if any(r[3] != "-" for r in rows) else COLORS["info" if alive else "gone"]
        pad = "text-align:left;padding:0 12px 0 0"
        head = "".join(f"<th style='{pad}'>{h}</th>" for h in ("thread", "state", "system call", "wchan"))
        cells = "".join("<tr>" + "".join(f"<td style='{pad}'>{html.escape(v)}</td>" for v in row) + "</tr>"
                        for row in rows)
        story = "".join(f"<div>{html.escape(line)}</div>" for line in self.epitaph())
        return (f'<div style="{_STYLE.format(color=color)}"><b>{html.escape(self.name)}</b> (pid {self.pid})'
                f"{html.escape(self._origin)}"
                f"<table style='border-collapse:collapse'><tr>{head}</tr>{cells}</table>{story}</div>")

    def _refresh(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.REFRESH):
            rows = self.read()
            self.widget.value = self._html(rows)  # traitlets sends nothing when the value is unchanged
            if all(r[1] == "exited" for r in rows):
                return

    def _ipython_display_(self) -> None:
        show(self.widget, self.plain())
        threading.Thread(target=self._refresh, daemon=True, name=f"card-{self.name}").start()


# What each process's cards have seen, by pid: when the first was made, the last reading while it
# lived, when it was first seen gone. Shared, so a card made after the end still tells the story.
_LIVES: dict[int, dict] = {}


def _comm(pid: int, tid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return str(tid)


class Gauge:
    """A count against a limit, as a labelled bar: e.g. connections waiting in an accept queue vs the backlog.

        gauge = Gauge("accept queue", limit=2, unit="waiting", limit_name="backlog")
        gauge.update(3)                                    # from any thread
        gauge.follow(lambda: accept_queue(path).queued)   # or let a daemon thread read it
        gauge                                              # accept queue: 3 waiting (backlog 2, over it)

    The bar is scaled to the limit. A value above the limit fills the bar, turns it red and says so
    in words, because a kernel limit is not always a hard cap (Linux queues backlog + 1 connections).
    `follow()` takes one reading at once (so the text shown is deterministic) and then re-reads a few
    times a second in a daemon thread, which stops by itself when a reading fails or returns None,
    or after `seconds`. Introduced in 03-listen-and-backlog.
    """

    def __init__(self, label: str, limit: int, unit: str = "", limit_name: str = "limit"):
        self.label, self.limit, self.unit, self.limit_name = label, limit, unit, limit_name
        self.value = 0
        self._bar = w.IntProgress(value=0, min=0, max=max(limit, 1), layout=w.Layout(width="240px"))
        self._text = w.Label()
        self.widget = w.HBox([w.Label(label), self._bar, self._text])
        self.update(0)

    def update(self, value: int, limit: int | None = None) -> None:
        if limit is not None:
            self.limit = limit
            self._bar.max = max(limit, 1)
        self.value = value
        self._bar.value = min(value, self._bar.max)
        self._bar.bar_style = "danger" if value > self.limit else ("warning" if value == self.limit else "info")
        self._text.value = self.reading()

    def follow(self, read, seconds: float = 300.0, interval: float = 0.2) -> Gauge:
        """Show `read()` now, then keep re-reading it in the background; returns the gauge itself."""
        self.update(read())

        def loop():
            for _ in range(int(seconds / interval)):
                time.sleep(interval)  # a polling period, not a wait for a state: the reading decides
                try:
                    value = read()
                except Exception:  # the thing we watch is gone (its listener closed): the gauge stays
                    return
                if value is None:
                    return
                if value != self.value:
                    self.update(value)

        threading.Thread(target=loop, daemon=True, name=f"gauge-{self.label}").start()
        return self

    def reading(self) -> str:
        """`3 waiting (backlog 2, over it)`: the value against the limit, in words."""
        unit = f" {self.unit}" if self.unit else ""
        over = ", over it" if self.value > self.limit else ""
        return f"{self.value}{unit} ({self.limit_name} {self.limit}{over})"

    def plain(self) -> str:
        return f"{self.label}: {self.reading()}"

    def _ipython_display_(self) -> None:
        show(self.widget, self.plain())
