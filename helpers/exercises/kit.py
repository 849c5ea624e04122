"""What the exercise checkers share: scratch paths, timeouts, and the tests every checker makes.

    with scratch_path("serve") as path:       a fresh path in the private workspace, removed afterwards
    report.run(f, path, timeout=limit(1.0))   1.0 s of scenario plus the allowance for a slow machine

The allowance is what a hanging function costs: the tests lower it with SLL_EXERCISE_ALLOWANCE, so
that a hang is seen in about a second instead of waited out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

from helpers.exercises.plain import type_name
from helpers.exercises.runner import Outcome
from helpers.observe import wait_until
from helpers.socket_dir import workspace

__all__ = ["ALLOWANCE_ENV", "STARTUP", "busy", "is_int", "limit", "ran", "scratch_path", "shown", "spin_message",
           "started"]

ALLOWANCE_ENV = "SLL_EXERCISE_ALLOWANCE"
ALLOWANCE = 3.0  # seconds a function may run beyond what its scenario needs, on a slow or busy machine
SLACK = 0.15  # seconds of scheduling noise forgiven around a measured wait (a loaded machine, 2 cores)
STARTUP = 10.0  # seconds a checker waits for the student's process to start (a busy machine is slow)


def limit(scenario: float = 0.0) -> float:
    """The timeout of a run whose scenario takes `scenario` seconds."""
    try:
        allowance = float(os.environ.get(ALLOWANCE_ENV, ALLOWANCE))
    except ValueError:
        allowance = ALLOWANCE
    return scenario + allowance


@contextlib.contextmanager
def scratch_path(stem: str, suffix: str = ".sock"):
    """A fresh path in the workspace; whatever is there at the end (file, socket, directory) is removed."""
    path = workspace().path(f"{stem}-{uuid.uuid4().hex[:6]}{suffix}")
    try:
        yield path
    finally:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def started(run) -> bool:
    """Wait until the student's function runs (a Background), so that a scenario's clock starts then."""
    return wait_until(run.started, STARTUP)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shown(value, width: int = 60) -> str:
    """A returned value as the student would print it, with its type: `'3' (str)`."""
    text = repr(value)
    if len(text) > width:
        text = text[:width] + "..."
    return f"{text} ({type_name(value)})"


def ran(report, outcome: Outcome, call: str) -> bool:
    """Record a failed check if the function hung, raised or ended its process; True if it returned."""
    if not outcome.ok:
        report.fail(f"{call}: your function {outcome.problem()}")
    return outcome.ok


def busy(outcome: Outcome) -> bool:
    """Did the function spin instead of waiting? (CPU time above a tenth of its wall time: a loop that
    waits uses a few hundredths of a second; one that spins, on a machine shared with other busy
    processes, still gets far more than a tenth of a core)"""
    return outcome.cpu_seconds > outcome.seconds / 10 + 0.05


def spin_message(outcome: Outcome) -> str:
    return (f"your function burned {outcome.cpu_seconds:.2f} s of CPU in {outcome.seconds:.2f} s: it spins instead "
            "of waiting. Let the kernel wait for you (a blocking call, a timeout, select) or sleep between tries")


