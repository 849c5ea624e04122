"""What a checker tells the student: a list of checks, each passed or failed, in plain words.

    check_remove_if_stale(remove_if_stale)
    ✓ a stale socket file (nobody listening) was removed
    ✗ a live server's socket file was removed: connect first; only ECONNREFUSED means stale

A report shows as a small widget-free HTML list in the browser and as the same lines in text, so
the committed notebook (and nbval) see exactly what the student sees.
"""

from __future__ import annotations

import functools
import html

from helpers.exercises.runner import is_stub

__all__ = ["Report", "checker"]

_MARKS = {True: "✓", False: "✗", None: "·"}


class Report:
    def __init__(self, title: str):
        self.title = title
        self.lines: list[tuple[bool | None, str]] = []
        self.not_started = False

    def check(self, passed: bool, good: str, bad: str) -> bool:
        """Record one check: `good` if it passed, `bad` (what went wrong and what to try) if not."""
        self.lines.append((bool(passed), good if passed else bad))
        return bool(passed)

    def note(self, text: str) -> None:
        self.lines.append((None, text))

    def note_problem(self, outcome) -> None:
        """Add what went wrong in the student's run (hung, raised), if anything did."""
        if outcome.problem():
            self.note(f"your function {outcome.problem()}")

    @property
    def passed(self) -> bool:
        results = [ok for ok, _ in self.lines if ok is not None]
        return bool(results) and all(results) and not self.not_started

    def verdict(self) -> str:
        if self.not_started:
            return "Not solved yet: replace the `...` with your code, run that cell, then run this one again."
        return "All checks passed. Well done." if self.passed else "Not yet: see the ✗ lines above."

    def __repr__(self) -> str:
        lines = [self.title, *(f"{_MARKS[ok]} {text}" for ok, text in self.lines), self.verdict()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else ("#757575" if self.not_started else "#c62828")
        items = "".join(f"<li style='list-style:none'>{_MARKS[ok]} {html.escape(text)}</li>" for ok, text in self.lines)
        return (f"<div style='border-left:4px solid {color};padding:4px 10px'><b>{html.escape(self.title)}</b>"
                f"<ul style='margin:2px 0;padding-left:4px'>{items}</ul><i>{html.escape(self.verdict())}</i></div>")


def checker(title: str):
    """Decorate a checker `f(report, student_function)`: handles stubs and returns the Report."""

    def decorate(check):
        @functools.wraps(check)
        def run(student_function) -> Report:
            report = Report(title)
            if not callable(student_function):
                report.check(False, "", f"expected your function, got {type(student_function).__name__}: "
                                        "pass the function's name without calling it")
            elif is_stub(student_function):
                report.not_started = True
            else:
                check(report, student_function)
            return report

        return run

    return decorate
