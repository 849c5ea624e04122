"""What a checker tells the student: a list of checks, each passed or failed, in plain words.

    check_remove_if_stale(remove_if_stale)
    ✓ a stale socket file (nobody listening) was removed
    ✗ a live server's socket file was removed: connect first; only ECONNREFUSED means stale

A report shows as a small widget-free HTML list in the browser and as the same lines in text, so
the committed notebook (and nbval) see exactly what the student sees.

Every run of the student's function goes through the report (`report.run`, `report.background`),
so that the checker decorator can add, once, what every exercise asks: nothing left behind (no
socket open, no socket left to the garbage collector, no thread or process still running), and
what the function printed. Scenarios vary from run to run; `report.rng` draws them from a seed that
a failed report shows, and the environment variable SLL_EXERCISE_SEED replays.
"""

from __future__ import annotations

import functools
import html
import os
import random
import sys

from helpers.exercises.runner import Background, Outcome, is_stub, run_isolated
from helpers.puppet import PuppetExited

__all__ = ["Report", "checker"]

SEED_ENV = "SLL_EXERCISE_SEED"
_MARKS = {True: "✓", False: "✗", None: "·"}


class _Hung(Exception):
    """Raised by `report.run` after a run that hung: the next scenario would only hang again."""


class Report:
    def __init__(self, title: str, seed: int | None = None):
        self.title = title
        self.lines: list[tuple[bool | None, str]] = []
        self.not_started = False
        self.seed = seed if seed is not None else random.randrange(10**6)
        self.rng = random.Random(self.seed)
        self._runs: list[Outcome | Background] = []

    def check(self, passed: bool, good: str, bad: str) -> bool:
        """Record one check: `good` if it passed, `bad` (what went wrong and what to try) if not."""
        self.lines.append((bool(passed), good if passed else bad))
        return bool(passed)

    def ok(self, text: str) -> bool:
        self.lines.append((True, text))
        return True

    def fail(self, text: str) -> bool:
        self.lines.append((False, text))
        return False

    def note(self, text: str) -> None:
        self.lines.append((None, text))

    def note_problem(self, outcome) -> None:
        """Add what went wrong in the student's run (hung, raised), if anything did."""
        if outcome.problem():
            self.note(f"your function {outcome.problem()}")

    # -- running the student's function ------------------------------------------------------------

    @property
    def outcomes(self) -> list[Outcome]:
        """Every finished run of the student's function, in order."""
        return [r if isinstance(r, Outcome) else r.outcome for r in self._runs
                if isinstance(r, Outcome) or r.outcome is not None]

    def _before_run(self) -> None:
        if any(o.timed_out for o in self.outcomes):
            raise _Hung

    def run(self, func, *args, timeout: float, repeat: int | None = None) -> Outcome:
        """run_isolated, remembered for the final checks; after a hang, stop the checker instead."""
        self._before_run()
        outcome = run_isolated(func, *args, timeout=timeout, repeat=repeat)
        self._runs.append(outcome)
        return outcome

    def background(self, func, *args, timeout: float) -> Background:
        """A Background run, remembered like `run` (its outcome counts once it has finished)."""
        self._before_run()
        run = Background(func, *args, timeout=timeout)
        self._runs.append(run)
        return run

    def finish(self) -> None:
        """The checks every exercise shares, over every run: nothing left behind; what it printed."""
        for run in self._runs:
            if isinstance(run, Background):
                run.join()  # a run the checker left behind ends here, within its timeout
        runs = self.outcomes
        running = [p for o in runs for p in o.left_running]
        if running:
            self.fail(f"your function left process{'es' if len(running) > 1 else ''} {', '.join(running[:3])} "
                      "running (we killed it): wait for every process you start, and end it, before you return")
        threads = sorted({t for o in runs for t in o.threads})
        if threads:
            self.fail(f"your function returned but left a thread running ({', '.join(threads[:3])}): join() every "
                      "thread you start (cancel a Timer, then join it) before you return")
        unclosed = sum(o.unclosed for o in runs)
        if unclosed:
            self.fail(f"your function never closed {unclosed} socket(s): the garbage collector closed them for you. "
                      "Close every socket you create, also when an error ends your function "
                      "(`with socket.socket(...) as s:` does both)")
        left_open = [s for o in runs for s in o.left_open]
        if left_open:
            self.fail(f"your function left {len(left_open)} socket(s) open when it returned "
                      f"({', '.join(left_open[:3])}): close every socket you create (`with socket.socket(...) as s:`)")
        printed = next((o.output for o in runs if o.output), "")
        if printed:
            self.note("your function printed:\n" + printed)

    @property
    def passed(self) -> bool:
        results = [ok for ok, _ in self.lines if ok is not None]
        return bool(results) and all(results) and not self.not_started

    def first_failure(self) -> str:
        return next((text for ok, text in self.lines if ok is False), "")

    def verdict(self) -> str:
        if self.not_started:
            return "Not solved yet: replace the `...` with your code, run that cell, then run this one again."
        if self.passed:
            return "All checks passed. Well done."
        return f"Not yet: see the ✗ lines above. (Scenario seed {self.seed}: {SEED_ENV}={self.seed} replays it.)"

    def __repr__(self) -> str:
        lines = [self.title, *(f"{_MARKS[ok]} {text}" for ok, text in self.lines), self.verdict()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else ("#757575" if self.not_started else "#c62828")
        items = "".join(f"<li style='list-style:none;white-space:pre-wrap'>{_MARKS[ok]} {html.escape(text)}</li>"
                        for ok, text in self.lines)
        return (f"<div style='border-left:4px solid {color};padding:4px 10px'><b>{html.escape(self.title)}</b>"
                f"<ul style='margin:2px 0;padding-left:4px'>{items}</ul><i>{html.escape(self.verdict())}</i></div>")


def _seed() -> int | None:
    value = os.environ.get(SEED_ENV, "").strip()
    return int(value) if value.isdigit() else None


def _record(check, passed: bool) -> None:
    """The verdict, for the progress view of 00; the lesson is the checker module's LESSON."""
    from helpers.progress import record_exercise  # imported late: nbformat is slow, and only a finished check needs it

    record_exercise(sys.modules[check.__module__].LESSON, check.__name__, passed)


def checker(title: str):
    """Decorate a checker `f(report, student_function)`: handles stubs, hangs, harmed puppets, and
    the shared final checks, and returns the Report."""

    def decorate(check):
        @functools.wraps(check)
        def run(student_function) -> Report:
            report = Report(title, seed=_seed())
            if not callable(student_function):
                report.fail(f"expected your function, got {type(student_function).__name__}: "
                            "pass the function's name without calling it")
                return report
            if is_stub(student_function):
                report.not_started = True
                return report
            try:
                check(report, student_function)
            except _Hung:
                if not report.first_failure():
                    report.fail(f"your function {next(o for o in report.outcomes if o.timed_out).problem()}")
                report.note("we stopped there: your function hung, and the next scenarios would wait as long")
            except (PuppetExited, EOFError):
                report.fail("the process you were asked about was killed by your function: look at it "
                            "(read /proc), never signal it")
            except TimeoutError:
                report.fail("the process you were asked about stopped answering: did your function stop it "
                            "(SIGSTOP)? Look at it (read /proc), never signal it")
            if not report.lines:
                report.fail(f"your function {report.outcomes[-1].problem() if report.outcomes else 'was not run'}")
            report.finish()
            _record(check, report.passed)
            return report

        return run

    return decorate
