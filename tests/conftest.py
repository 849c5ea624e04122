"""Shared pytest set-up: the "nothing left behind" fixtures, and how `make test` spreads tests over workers.

Fixtures (request them by name, or `pytestmark = pytest.mark.usefixtures("nothing_left_behind")`):

    no_process_left      no process started under this one is still running 3 s after the test
    no_socket_file_left  no socket file left in this process's workspace
    no_fd_left           no socket or pipe descriptor opened by the test still open in this process
    nothing_left_behind  all three

Parallel runs (`pytest -n N --dist loadgroup`, pytest-xdist): tests that share a module-scoped
fixture or a notebook's kernel must stay on one worker, so each test is grouped by its file (as
`--dist loadfile` would: nbval's cells of one notebook share its kernel), except the fault tests,
whose lessons are independent and each long: one group per lesson.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from helpers import workspace
from helpers.observe import wait_until

SPREAD_BY_PARAMETER = {"tests/test_faults.py"}  # one group per parametrized case, not per file


def pytest_report_header(config):
    chromium = Path("/usr/bin/chromium")
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    if chromium.exists():
        state = "present"
    else:
        state = "missing: browser tests " + ("fail (CI=true)" if ci else "skip")
    return [f"chromium: {chromium} {state}"]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        path = item.nodeid.split("::", 1)[0]
        group = item.nodeid if path in SPREAD_BY_PARAMETER else path
        item.add_marker(pytest.mark.xdist_group(group))


def _descendants() -> dict[int, str]:
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = process.name()
        except psutil.NoSuchProcess:
            continue
    return found


def _socket_and_pipe_fds() -> dict[str, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed while we looked (the listing's own descriptor, for one)
            continue
        if target.startswith(("socket:", "pipe:")):
            found[name] = target
    return found


@pytest.fixture
def no_process_left():
    before = set(_descendants())

    def extra() -> dict[int, str]:
        return {pid: name for pid, name in _descendants().items() if pid not in before}

    yield
    wait_until(lambda: not extra(), 3.0)  # a helper asked to stop may take a moment to exit
    assert not extra(), f"processes left running by the test: {extra()}"


@pytest.fixture
def no_socket_file_left():
    before = set(workspace().sockets())
    yield
    left = sorted(set(workspace().sockets()) - before)
    assert not left, f"socket files left in the workspace {workspace().dir}: {left}"


@pytest.fixture
def no_fd_left():
    before = _socket_and_pipe_fds()

    def extra() -> dict[str, str]:
        return {fd: target for fd, target in _socket_and_pipe_fds().items() if before.get(fd) != target}

    yield
    wait_until(lambda: not extra(), 2.0)  # a reader thread closes its pipe when it sees the end
    assert not extra(), f"descriptors left open by the test: {extra()}"


@pytest.fixture
def nothing_left_behind(no_fd_left, no_socket_file_left, no_process_left):
    """No process, socket file or descriptor outlives the test (checked in that order: a process's
    pipes close when it exits)."""
    yield
