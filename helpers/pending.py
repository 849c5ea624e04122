"""A call that the kernel put to sleep in a puppet: where it sleeps, and how it ended.

`helpers.puppet`'s lanes hand one back when they see the puppet's thread asleep in a call (the
module docstring there tells when); it resolves by itself once the puppet's reply arrives (the
reader thread of `wire.Channel`), and shown in a notebook it is a live card (`widgets.show_call`).
`finished(value)` waits for a value that may or may not be one. Both are also exported by
`helpers.puppet` and `helpers`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from helpers import observe, wire
from helpers.explain import Teaching

if TYPE_CHECKING:
    from helpers.puppet import _Lane

__all__ = ["PendingCall", "finished"]


def finished(value, timeout: float = 5.0):
    """The value of a call whether or not it blocked: a PendingCall is waited for, anything else passes.

    For calls whose blocking depends on timing, not on the lesson (a large recv while the bytes are
    still arriving): the cell shows the same result either way. Introduced in 06-close-semantics.
    """
    return value.result(timeout) if isinstance(value, PendingCall) else value


class PendingCall(Teaching):
    """A call that the kernel put to sleep. Shows where it sleeps; resolves by itself.

    `done()` tells whether it has finished, `result(timeout)` waits for its value (or raises its
    error), `status` is "blocked", "returned" or "raised", `outcome()` says it in one line, and
    `add_done_callback(fn)` runs `fn(call)` once when it finishes; `duration` is how long it took,
    `timeline()` tells its story with times, and `told` counts how often a cell's code was handed the
    outcome. Displayed in a notebook, it is a live card that flips to the result when it comes.
    """

    def __init__(self, lane: _Lane, label: str, future: Future, snapshot: observe.ThreadSnapshot | None,
                 times: tuple[float, float | None]):
        self.puppet, self.tid, self.label, self.snapshot = lane.puppet, lane.tid, label, snapshot
        self._future = future
        self._sent, self._seen_asleep = times
        self.told = 0  # how often a cell was handed its outcome (result(), outcome() once done, in the main thread)

    def timeline(self) -> list[str]:
        """The call's story, timed from when it was sent: where it was seen asleep, then how it ended.

            ['accept() blocked in accept4(fd=3), sleeping in inet_csk_accept at 0.00 s',
             '-> returned (<remote socket fd=4>, '') at 2.31 s']
        """
        asleep = "" if self._seen_asleep is None else f" at {self._seen_asleep - self._sent:.2f} s"
        story = [f"{self.label} {self.blocked_in}{asleep}"]
        if self.duration is not None:
            story.append(f"-> {self._ending()} at {self.duration:.2f} s")
        return story

    @property
    def duration(self) -> float | None:
        """Seconds from sending the call to its reply; None while it sleeps.

        How long the call took, the same whenever a cell asks: `time.monotonic() - started` in a later
        cell also counts the time the student spent reading before running it.
        """
        if not self._future.done():
            return None
        return self._future.ended_at - self._sent  # stamped by the reader thread (helpers.wire.Channel)

    def _count_told(self) -> None:
        """A cell's code asked: cells run in the main thread; a card's callbacks run in the reader's."""
        if threading.current_thread() is threading.main_thread():
            self.told += 1

    def _ending(self) -> str:
        error = self._future.exception()
        if error is None:
            return f"returned {self._future.result()!r}"
        return f"raised {type(error).__name__}: {error}"

    @property
    def blocked_in(self) -> str:
        if self.snapshot is None:
            return "pending (this system does not show system calls in /proc)"
        return self.snapshot.describe()

    @property
    def status(self) -> str:
        if not self._future.done():
            return "blocked"
        return "raised" if self._future.exception() else "returned"

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, fn) -> None:
        """Call `fn(call)` once when the call finishes (at once if it has): from the puppet's reader thread."""
        self._future.add_done_callback(lambda _: fn(self))

    def result(self, timeout: float = 5.0):
        """Wait up to `timeout` seconds for the call to finish; return its value or raise its error."""
        if timeout is None or timeout < 0:
            raise ValueError("give result() a timeout in seconds (>= 0): the course never waits forever")
        if not wire.settled(self._future, timeout):
            now = observe.snapshot(self.puppet.pid, self.tid).describe()
            raise TimeoutError(f"{self.puppet.name}: {self.label} still not finished after {timeout} s ({now})")
        self._count_told()
        return self._future.result()

    def __iter__(self):
        """Refuse unpacking (`conn, peer = listener.accept()`): a pending call is not its result."""
        if self.done():
            state = "has finished, but a pending call is the call, not its result"
        else:
            state = f"is still {self.blocked_in}: there is no result to unpack yet"
        raise TypeError(f"cannot unpack a pending call: {self.puppet.name}: {self.label} {state}. Keep the call "
                        f"and unpack its result, which waits for it: conn, peer = call.result(timeout=5)")

    def outcome(self, with_name: bool = True) -> str:
        """One line: where it is blocked, or what it returned or raised (`with_name`: after the puppet's name)."""
        name = f"{self.puppet.name}: " if with_name else ""
        if not self._future.done():
            return f"{name}{self.label} {self.blocked_in}"
        self._count_told()
        return f"{name}{self.label} {self._ending()}"

    def __repr__(self) -> str:
        return f"<{self.outcome()}>"

    def _ipython_display_(self):
        from helpers import widgets  # ipywidgets only once a card is shown

        widgets.show_call(self)
