"""Fault tests: what students do to a lesson (kill the kernel, press Stop, restart, run it twice).

For each lesson, one test runs two kernels at once in one 150-byte TMPDIR, each meeting faults:

    Stop      kernel A runs the first half of the lesson, the Stop button interrupts a waiting
              cell, the rest of the lesson runs; then Restart: the helpers it had are gone
    kill -9   kernel B runs until its first helper is up and is killed with SIGKILL (the kernel
              alone, as the OOM killer does): its helpers must be gone within 2 s; then it is
              restarted and runs the whole lesson (Restart & Run All), whose helper calls sweep
              the dead kernel's workspace
    twice     every cell is run twice in a row, as a student pressing Shift+Enter twice does: a
              cell either repeats its experiment or its second run ends in one line saying why; a
              cell tagged raises-exception raises the same exception class both times. Kernel A
              does it in the first half of the lesson, kernel B in the second, so that each
              kernel runs the lesson one and a half times and the two end together

and checks what is left behind: helper processes, workspace directories, socket files,
descriptors (after setup vs at the end), listeners reachable from another machine (audited all
along). One session per kernel serves several fault classes, so each lesson runs three times
here (once per kernel, plus every cell once more), not six. The real notebooks run in real kernels
(tests/kernels.py).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import stat
import threading
from pathlib import Path

import psutil
import pytest
from kernels import NOTEBOOKS, Cell, Kernel, code_cells, gone_within, long_tmpdir

from helpers import sock_diag
from helpers.kernel_view import ss, tcp_sockets
from helpers.socket_dir import sweep

pytestmark = [pytest.mark.lessons, pytest.mark.skipif(not NOTEBOOKS, reason="no lesson notebooks yet")]
LESSONS = [pytest.param(nb, id=nb.stem) for nb in NOTEBOOKS]


def _socket_files(directory: Path) -> list[str]:
    found = []
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                found.append(path)
    return found


def socket_inodes_of(kernel_pids: set[int]) -> set[int]:
    """The socket inodes held by these kernels or any process under them."""
    inodes = set()
    for pid in list(kernel_pids):
        try:
            tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                for target in os.listdir(f"/proc/{process.pid}/fd"):
                    link = os.readlink(f"/proc/{process.pid}/fd/{target}")
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
            except OSError:
                continue
    return inodes


def _loopback(host: str) -> bool:
    """127.x.x.x, ::1 or ::ffff:127.x.x.x."""
    address = ipaddress.ip_address(host)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def not_loopback_inodes() -> set[int]:
    """Inodes of listening TCP and bound UDP sockets whose address is not a loopback one, anyone's, read in
    this process (no `ss` to start). TCP from sock_diag (helpers.sock_diag), which walks only the kernel's
    table of listeners, where a read of /proc/net/tcp walks every bucket of the table of connections too
    (~1.7 ms of system time a file, ten times a second per test); /proc/net where the kernel lacks it.
    UDP from /proc/net/udp{,6}: its table is small (~0.1 ms a read)."""
    try:
        found = [(s.local[0], s.inode) for family in (socket.AF_INET, socket.AF_INET6)
                 for s in sock_diag.tcp(family, 1 << sock_diag.LISTEN)]
    except OSError:  # no sock_diag here (a kernel without inet_diag): the slower files
        found = [(s.local[0], s.inode) for s in tcp_sockets() if s.state == "LISTEN"]
    found += [(s.local[0], s.inode) for s in tcp_sockets(proto="udp") if s.state == "CLOSE"]  # 07: bound, unconnected
    return {inode for host, inode in found if not _loopback(host)}


def listeners_of(kernel_pids: set[int], inodes: set[int]) -> set[tuple[str, str]]:
    """Those of `inodes` held by the kernels, as `ss` shows them: `0.0.0.0:41859`, or `0.0.0.0%lo:47021`
    for a socket tied to the loopback device (SO_BINDTODEVICE), which no packet from another machine
    can reach (/proc/net does not show the device)."""
    ours = inodes & socket_inodes_of(kernel_pids)
    if not ours:
        return set()
    found = set()
    for row in ss("-t", "-u", "-l", "-e"):  # netid state recv-q send-q local peer ... ino:N ...
        inode = next((int(field[4:]) for field in row if field.startswith("ino:")), None)
        if inode in ours:
            found.add((row[0], row[4]))
    return found


def reachable_from_outside(local: str) -> bool:
    host = local.rsplit(":", 1)[0].strip("[]")
    return not (host.startswith("127.") or host == "::1" or host.endswith("%lo"))


class ListenerAudit:
    """Ten times a second, the TCP/UDP listeners of the kernels in `pids` (and their helpers) on a non-loopback
    address, while in `with`. Each such socket is looked up once (the machine's own, e.g. sshd's, too)."""

    def __init__(self):
        self.pids: set[int] = set()
        self.seen: set[tuple[str, str]] = set()
        self._looked_up: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.wait(0.1):  # every 20 ms cost a fifth of a CPU per fault test (kernel time)
            new = not_loopback_inodes() - self._looked_up
            if new:
                self.seen.update(listeners_of(self.pids, new))
                self._looked_up |= new

    def __enter__(self) -> ListenerAudit:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def public(self) -> list[tuple[str, str]]:
        return sorted((proto, local) for proto, local in self.seen if reachable_from_outside(local))


def test_the_audit_sees_a_listener_on_every_address_and_a_tcp_one_on_loopback_only_not(with_and_without_sock_diag):
    """What the audit reads, against real sockets: a TCP listener and a UDP socket on 0.0.0.0 are seen and
    found, a TCP listener on 127.0.0.1 is not; from sock_diag, and from /proc/net as on a kernel without
    it. The wildcard ones are tied to the loopback device (SO_BINDTODEVICE), so that no packet from
    another machine can reach them even while they live."""
    with socket.socket() as public, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams, \
            socket.socket() as loopback:
        for sock in (public, datagrams):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
            sock.bind(("0.0.0.0", 0))
        public.listen()
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()
        public_inode, datagram_inode, loopback_inode = (os.fstat(s.fileno()).st_ino for s in (public, datagrams, loopback))
        seen = not_loopback_inodes()
        assert {public_inode, datagram_inode} <= seen and loopback_inode not in seen
        found = listeners_of({os.getpid()}, seen)
        assert ("tcp", f"0.0.0.0%lo:{public.getsockname()[1]}") in found, found
        assert not [local for _, local in found if reachable_from_outside(local)]


def test_a_cell_the_harness_sends_never_aborts_the_one_after_it():
    """ipykernel aborts, unrun, the requests queued behind a failed cell sent with stop_on_error, and it
    starts doing so only after that cell's reply: a cell sent the moment the reply arrived was sometimes
    aborted (lessons 00 and 09, after the Stop button). Two cells queued at once, the first failing:
    the second must run."""
    with Kernel() as kernel:
        failing = kernel.start("import time\ntime.sleep(0.3)\n1 / 0")
        next_one = kernel.start("print('ran')")
        assert kernel.wait_reply(failing, 30)["content"]["status"] == "error"
        assert kernel.wait_reply(next_one, 30)["content"]["status"] == "ok"


def run_cells(kernel: Kernel, cells: list[Cell], first: int = 0) -> list[str]:
    """Run `cells` (numbered from `first`); the unexpected errors."""
    problems = []
    for index, cell in enumerate(cells, first):
        error = kernel.run(cell.source).error
        if error and not cell.may_raise:
            problems.append(f"cell {index}: {error}")
    return problems


def _kind(error: str | None) -> str | None:
    return error.split(":", 1)[0] if error else None


def run_cells_twice(kernel: Kernel, cells: list[Cell], first: int = 0) -> list[str]:
    """Run each of `cells` twice in a row (numbered from `first`); what went wrong: an unexpected
    error, or a cell tagged raises-exception that did not raise the same exception class twice."""
    problems = []
    for index, cell in enumerate(cells, first):
        errors = [kernel.run(cell.source, timeout=60).error for _ in range(2)]
        head = cell.source.strip().splitlines()[0][:60]
        if cell.may_raise:
            if not errors[0] or _kind(errors[0]) != _kind(errors[1]):
                problems.append(f"cell {index} ({head}): raised {errors[0]!r}, then {errors[1]!r}")
        elif any(errors):
            run = "first" if errors[0] else "second"
            problems.append(f"cell {index} ({head}): {run} run: {errors[0] or errors[1]}")
    return problems


def leaks(kernel: Kernel, after_setup: dict[int, str]) -> list[str]:
    """Descriptors opened since the setup cell and still open, and helper processes still running."""
    at_end = kernel.settled_fds(after_setup)
    problems = []
    new = {fd: target for fd, target in at_end.items() if after_setup.get(fd) != target}
    if new:  # fewer at the end is no leak: the kernel's own transient descriptors come and go
        problems.append(f"{len(after_setup)} fds after setup, {len(at_end)} at the end; new: {new}")
    if kernel.helpers():
        problems.append(f"helper processes left running at the end: {kernel.helpers()}")
    return problems


def press_stop(kernel: Kernel) -> list[str]:
    """A cell that waits as the helpers wait (polling state), interrupted as the Stop button does."""
    msg_id = kernel.start("from helpers import wait_until\nprint('waiting', flush=True)\n"
                          "wait_until(lambda: False, timeout=60)")
    kernel.wait_output(msg_id, "waiting", timeout=30)  # the cell's own code runs now
    kernel.manager.interrupt_kernel()
    content = kernel.wait_reply(msg_id, timeout=30)["content"]
    if (content["status"], content.get("ename")) != ("error", "KeyboardInterrupt"):
        return [f"the Stop button gave {content['status']} {content.get('ename')}, not KeyboardInterrupt"]
    return []


def workspace_of(kernel: Kernel) -> Path:
    """The kernel's workspace (a TMPDIR too long for socket paths makes it fall back to /tmp or /dev/shm)."""
    result = kernel.run("from helpers import workspace as _workspace\nprint(_workspace().dir)")
    assert result.error is None, result.error
    # print() writes the path and its newline apart: they may come as two stream messages (once the last
    # one was the newline alone, and the workspace read as Path('.'))
    printed = "".join(out["text"] for out in result.outputs if out.get("name") == "stdout").strip()
    assert printed.startswith("/"), f"the kernel printed {printed!r} for its workspace"
    return Path(printed)


def _middle(cells: list[Cell]) -> int:
    """Where the first half of a lesson ends: kernel A runs each cell twice before it, kernel B from it on."""
    return len(cells) // 2


def first_half_twice_stop_rest_restart(notebook: Path, env: dict, audit: ListenerAudit, made: list[Path]) -> list[str]:
    cells = code_cells(notebook)
    middle = _middle(cells)
    with Kernel(env) as kernel:
        audit.pids.add(kernel.pid)
        problems = [f"first half, each cell twice, {p}" for p in run_cells_twice(kernel, cells[:1])]
        after_setup = kernel.fds()
        problems += [f"first half, each cell twice, {p}" for p in run_cells_twice(kernel, cells[1:middle], 1)]
        problems += press_stop(kernel)
        problems += [f"after Stop, {p}" for p in run_cells(kernel, cells[middle:], middle)]
        problems += leaks(kernel, after_setup)
        made.append(workspace_of(kernel))
        before_restart = kernel.helpers()
        kernel.restart()
        problems += [f"helper {p.pid} survived the restart" for p in gone_within(before_restart, 2.0)]
    return problems


def kill_9_restart_run_all_second_half_twice(notebook: Path, env: dict, audit: ListenerAudit, made: list[Path]) -> list[str]:
    cells = code_cells(notebook)
    with Kernel(env) as kernel:
        audit.pids.add(kernel.pid)
        started, problems = [], []
        for index, cell in enumerate(cells):
            problems += run_cells(kernel, [cell], index)
            started = kernel.helpers()
            if started:
                break
        dead_workspaces = []
        if started:  # a lesson that starts no helper has nothing for kill -9 to leave behind
            dead_workspaces.append(workspace_of(kernel))
            os.kill(kernel.pid, signal.SIGKILL)
            survivors = gone_within(started, timeout=2.0)
            problems += [f"helper {p.pid} alive 2 s after kill -9 of the kernel" for p in survivors]
        kernel.restart()
        audit.pids.add(kernel.pid)
        middle = _middle(cells)
        problems += [f"Run All after the restart, {p}" for p in run_cells(kernel, cells[:1])]
        after_setup = kernel.fds()
        problems += [f"Run All after the restart, {p}" for p in run_cells(kernel, cells[1:middle], 1)]
        problems += [f"Run All after the restart, second half, each cell twice, {p}"
                     for p in run_cells_twice(kernel, cells[middle:], middle)]
        problems += leaks(kernel, after_setup)
        problems += [f"{old} of the killed kernel was not swept" for old in dead_workspaces if old.exists()]
        made.append(workspace_of(kernel))
    return problems


@pytest.mark.timeout(900)
@pytest.mark.parametrize("notebook", LESSONS)
def test_stop_kill_9_restart_run_twice_and_two_kernels_at_once_leave_nothing_behind(notebook, tmp_path):
    tmp = long_tmpdir(tmp_path)  # 150 bytes: socket paths must still fit in sun_path's 108
    env = {"TMPDIR": str(tmp)}
    made: list[Path] = []  # the workspaces of the kernels alive at the end
    faults = {
        "first half twice, Stop, rest of the lesson, Restart":
            lambda audit: first_half_twice_stop_rest_restart(notebook, env, audit, made),
        "kill -9, Restart & Run All, second half twice":
            lambda audit: kill_9_restart_run_all_second_half_twice(notebook, env, audit, made),
    }
    outcomes: dict[str, list[str]] = {}

    def run(name, fault, audit):
        try:
            outcomes[name] = fault(audit)
        except Exception as error:  # reported below, with the fault that raised it
            outcomes[name] = [f"{type(error).__name__}: {error}"]

    with ListenerAudit() as audit:
        runners = [threading.Thread(target=run, args=(name, fault, audit)) for name, fault in faults.items()]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(800)
    problems = {name: outcomes.get(name, ["did not finish in 800 s"]) for name in faults}
    assert not any(problems.values()), "\n".join(f"{name}: {p}" for name, ps in problems.items() for p in ps)
    assert not audit.public(), f"the lesson listened on a non-loopback address: {audit.public()}"
    for directory in made:  # their kernels are gone now: the next kernel's sweep removes all they left
        sweep(str(directory.parent))
    assert not [d for d in made if d.exists()], f"workspaces a sweep does not remove: {made}"
    assert _socket_files(tmp) == [], "socket files left in TMPDIR outside any workspace"
