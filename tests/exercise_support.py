"""What every exercise test needs: a lesson's reference solutions, and proof that a checker cleans up.

Solution modules are named after their lesson (`04_accept.py`): a leading digit is no valid module
name, so they are loaded from their file. Import `nothing_left_behind` into a test module to make
its checks run after every test there (an autouse fixture, which also shortens the allowance a
hanging student function gets, so that a hang costs about a second).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from helpers import processes, stop_all, workspace

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"


def load_solutions(filename: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"solutions_{Path(filename).stem}", SOLUTIONS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_caught(report, phrases: list[str]) -> None:
    """A wrong solution must fail, and the report must say why in these words."""
    assert not report.passed, repr(report)
    for phrase in phrases:
        assert phrase in repr(report), repr(report)


def running_descendants() -> dict[int, str]:
    """This process's descendants still running, by pid, with their names: walked down from us
    (helpers.processes.descendants), not found by reading every process's stat file as psutil's
    children() does (milliseconds on a machine busy with a whole test run, several times a test)."""
    found = {}
    for pid in processes.descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                found[pid] = comm.read().strip()
        except OSError:  # it ended while we looked
            continue
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind(short_allowance):
    fds_before = set(os.listdir("/proc/self/fd"))
    yield
    assert stop_all() == 0, "a checker left a puppet running"
    assert workspace().sockets() == [], "a checker left a socket file in the workspace"
    assert running_descendants() == {}, "a checker left a process running"
    sockets = [fd for fd in set(os.listdir("/proc/self/fd")) - fds_before
               if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")] if os.path.exists("/proc/self/fd") else []
    assert sockets == [], "a checker left a socket open in the test process"
