"""Shared pytest set-up: the "nothing left behind" fixtures, and how `make test` spreads tests over workers.

Fixtures (request them by name, or `pytestmark = pytest.mark.usefixtures("nothing_left_behind")`):

    no_process_left      no process started under this one is still running 3 s after the test
    no_socket_file_left  no socket file left in this process's workspace
    no_fd_left           no socket or pipe descriptor opened by the test still open in this process
    nothing_left_behind  all three
    short_allowance      a student's function or program that hangs is stopped 1 s past its
                         scenario instead of 3 s (SLL_EXERCISE_ALLOWANCE, see helpers.exercises.kit)
    with_and_without_sock_diag  the test runs twice: with helpers.sock_diag, and as on a kernel without it
    browser, tab, page   for a module of browser tests that defines `lab` (tests/browser_lab.py):
                         one Chromium, one page that loads JupyterLab once, and each test's use of it

Parallel runs (`pytest -n N --dist loadscope --no-loadscope-reorder`, pytest-xdist): the scope
of a test, the unit a worker takes whole, is defined here (`pytest_xdist_make_scheduler`):

    any .ipynb (notebooks/, tests/fixtures/)  one unit per notebook: nbval's cells share its kernel
    tests/test_browser_student.py  one unit: its tests share one JupyterLab
    tests/test_browser.py        BROWSER_UNITS units, each on one worker with its own JupyterLab
                                 (a module-scoped fixture) and Chromium
    anything else                one unit per test, so the lessons' fault tests spread

The longest units are handed out first (LONGEST_FIRST orders the collection), but no more than
HEAVY_AT_ONCE of them are in the workers' hands at a time: the other workers take the light tests
(unit tests, the checkers' tests), which mostly wait on clocks, and fill the CPU that the
heavy ones leave idle. Run last, as they were, they kept 5 workers waiting on clocks while the CPU
idled: back to back on 2 cores, 7% of the CPU idle in a whole run, against 4% with 7 workers and
this rule (the wall time is the CPU's work now; what is left to gain is in less CPU). xdist's own
`--dist loadgroup` cannot do this with pytest 9: it renames the items' node ids, which pytest 9
computes instead of storing.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest
from exercise_support import running_descendants

from helpers import sock_diag, workspace
from helpers.exercises.kit import ALLOWANCE_ENV
from helpers.observe import wait_until

# pytest keeps each test module it rewrites (for its assert messages) as bytecode beside it, but not
# under PYTHONDONTWRITEBYTECODE (set on many CI machines, and here): then every xdist worker parses and
# rewrites every test module anew on every run, ~2 s of CPU each. This process only: its children
# (kernels, puppets) keep the setting; `make bytecode` compiles helpers/ for them.
sys.dont_write_bytecode = False

LONGEST_FIRST = ("tests/test_browser.py", "tests/test_other_settings.py", "tests/test_faults.py", "notebooks/")
SHARED_BY_FILE = ("notebooks/", "tests/test_browser_student.py")
BROWSER = "tests/test_browser.py"
BROWSER_UNITS = 3
HEAVY_AT_ONCE = 5  # whole-lesson runs (LONGEST_FIRST) at a time: more only compete for the 2 cores


def pytest_configure(config):
    """nbval starts its kernels with its own copy of jupyter_client's start_new_kernel, over TCP, and
    has no setting for the transport: its module's function is replaced by ours, over AF_UNIX sockets
    (tests/kernels.py: kernel_runtime_dir says why). With --nbval, when this file is loaded (`make test`
    collects tests/); `pytest notebooks` alone, as `make flake` runs it, keeps nbval's own."""
    if config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False):
        import nbval.kernel
        from kernels import start_kernel

        nbval.kernel.start_new_kernel = functools.partial(
            start_kernel, kernel_spec_manager=nbval.kernel.NbvalKernelspecManager())
        nbval.kernel.pformat = _FormattedWhenLogged


class _FormattedWhenLogged:
    """nbval 0.11 logs every kernel message with `logger.debug("...", pformat(msg))`: the message is
    pretty-printed whether or not the debug log is on: a quarter of the CPU of the test process in one
    nbval run of the series (py-spy: 1.2 of 4.5 s). Given in place of `pformat`, the
    message is formatted only when logging writes it out (`%s` calls `__str__`)."""

    def __init__(self, message):
        self.message = message

    def __str__(self) -> str:
        import pprint

        return pprint.pformat(self.message)


def pytest_report_header(config):
    chromium = Path("/usr/bin/chromium")
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    if chromium.exists():
        state = "present"
    else:
        state = "missing: browser tests " + ("fail (CI=true)" if ci else "skip")
    return [f"chromium: {chromium} {state}"]


def _rank(item: pytest.Item) -> int:
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: within a rank, the order of collection


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        """LoadScopeScheduling with the scopes described at the top of this file."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            self._units: dict[str, str] = {}
            self._browser_tests = 0

        def _assign_work_unit(self, node) -> None:
            """The next unit in order, unless HEAVY_AT_ONCE heavy units are in hand: then the next light one."""
            heavy_in_hand = sum(scope.startswith(LONGEST_FIRST) and not all(unit.values())
                                for work in self.assigned_work.values() for scope, unit in work.items())
            if heavy_in_hand >= HEAVY_AT_ONCE:
                light = next((scope for scope in self.workqueue if not scope.startswith(LONGEST_FIRST)), None)
                if light is not None:
                    self.workqueue.move_to_end(light, last=False)
            super()._assign_work_unit(node)

        def _split_scope(self, nodeid: str) -> str:
            if nodeid not in self._units:  # first seen in collection order (schedule())
                path = nodeid.split("::", 1)[0]
                if path.startswith(SHARED_BY_FILE) or path.endswith(".ipynb"):
                    self._units[nodeid] = path
                elif path == BROWSER:
                    self._units[nodeid] = f"{path}#{self._browser_tests % BROWSER_UNITS}"
                    self._browser_tests += 1
                else:
                    self._units[nodeid] = nodeid
            return self._units[nodeid]

    return Units(config, log)


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
    before = set(running_descendants())

    def extra() -> dict[int, str]:
        return {pid: name for pid, name in running_descendants().items() if pid not in before}

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


# -- browser tests (a module of them defines its own `lab` fixture: a browser_lab.LabServer) ----------


@pytest.fixture(scope="module")
def browser(lab):
    """One Chromium for the module."""
    from browser_lab import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def tab(browser, lab):
    """One page for the module's tests: JupyterLab loads in it once, and each test opens its notebooks there."""
    from browser_lab import Tab

    tab = Tab(browser, lab)
    yield tab
    tab.close()


@pytest.fixture
def page(tab):
    """The module's page. Afterwards its notebooks are closed (a test that failed may have left one open)
    and their kernels shut down, and no process of theirs may be left."""
    yield tab.use()
    killed = tab.done()
    assert not killed, f"still alive after the kernels were shut down (killed now): {killed}"


@pytest.fixture(params=["sock_diag", "without sock_diag"])
def with_and_without_sock_diag(request, monkeypatch) -> str:
    """The test runs twice: with the kernel's sock_diag, then as on a kernel without it (its modules not
    loadable, some containers), where every query fails and the helpers read `ss` or /proc/net instead."""
    if request.param != "sock_diag":
        def absent(*args, **kwargs):
            raise FileNotFoundError(2, "sock_diag: No such file or directory")

        monkeypatch.setattr(sock_diag, "unix", absent)
        monkeypatch.setattr(sock_diag, "tcp", absent)
    return request.param


@pytest.fixture
def short_allowance(monkeypatch):
    monkeypatch.setenv(ALLOWANCE_ENV, "1.0")
