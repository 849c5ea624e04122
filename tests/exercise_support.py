"""What every exercise test needs: a lesson's reference solutions, and proof that a checker cleans up.

Solution modules are named after their lesson (`04_accept.py`): a leading digit is no valid module
name, so they are loaded from their file. Import `nothing_left_behind` into a test module to make
its check run after every test there (it is an autouse fixture).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from helpers import stop_all, workspace

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
        assert phrase in repr(report)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert stop_all() == 0, "a checker left a puppet running"
    assert workspace().sockets() == [], "a checker left a socket file in the workspace"
