"""Fault tests: what students do to a lesson (kill the kernel, press Stop, restart, run it twice).

Each runs the real notebooks in real kernels (tests/kernels.py) and checks what is left behind:
helper processes, workspace directories, socket files, descriptors, listeners.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from pathlib import Path

import psutil
import pytest
from kernels import NOTEBOOKS, Kernel, code_cells, gone_within, long_tmpdir, run_notebook

from helpers.kernel_view import ss

pytestmark = pytest.mark.skipif(not NOTEBOOKS, reason="no lesson notebooks yet")
LESSONS = [pytest.param(nb, id=nb.stem) for nb in NOTEBOOKS]


def _socket_files(directory: Path) -> list[str]:
    found = []
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                found.append(path)
    return found


def listeners_of(kernel_pids: set[int]) -> set[tuple[str, str]]:
    """Listening TCP and bound UDP sockets held by these kernels or any process under them.

    Addresses as `ss` shows them: `127.0.0.1:41859`, or `0.0.0.0%lo:47021` for a socket tied to the
    loopback device (SO_BINDTODEVICE), which no packet from another machine can reach.
    """
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
    found = set()
    for row in ss("-t", "-u", "-l", "-e"):  # netid state recv-q send-q local peer ... ino:N ...
        inode = next((int(field[4:]) for field in row if field.startswith("ino:")), None)
        if inode in inodes:
            found.add((row[0], row[4]))
    return found


def reachable_from_outside(local: str) -> bool:
    host = local.rsplit(":", 1)[0].strip("[]")
    return not (host.startswith("127.") or host == "::1" or host.endswith("%lo"))


@pytest.fixture
def private_tmp(tmp_path):
    """A TMPDIR of our own, so 'nothing left behind' can be checked exactly."""
    tmp = tmp_path / "t"
    tmp.mkdir()
    return tmp


@pytest.mark.parametrize("notebook", LESSONS)
def test_kill_9_of_the_kernel_mid_lesson_leaves_nothing(notebook, private_tmp):
    env = {"TMPDIR": str(private_tmp)}
    kernel = Kernel(env)
    try:
        started = []
        for cell in code_cells(notebook):
            kernel.run(cell.source)
            started = kernel.helpers()
            if started:
                break
        if not started:
            pytest.skip(f"{notebook.name} starts no helper process")
        workspaces = list(private_tmp.glob("sll-*"))
        assert workspaces, "the lesson made no workspace in TMPDIR"
        os.kill(kernel.pid, signal.SIGKILL)
        survivors = gone_within(started, timeout=2.0)
        assert not survivors, f"helpers alive 2 s after kill -9 of the kernel: {[p.pid for p in survivors]}"
    finally:
        kernel.shutdown()

    with Kernel(env) as next_kernel:
        result = next_kernel.run("from helpers import workspace\nprint(workspace().dir)")
        assert result.error is None, result.error
    for old in workspaces:
        assert not old.exists(), f"{old} was not swept by the next kernel's first helper call"
    assert _socket_files(private_tmp) == [], "socket files left behind"


@pytest.mark.parametrize("notebook", LESSONS)
def test_stop_button_mid_lesson_then_rest_runs_then_restart_and_run_all(notebook, private_tmp):
    cells = code_cells(notebook)
    middle = len(cells) // 2
    with Kernel({"TMPDIR": str(private_tmp)}) as kernel:
        for index, cell in enumerate(cells[:middle]):
            result = kernel.run(cell.source)
            assert not result.error or cell.may_raise, f"cell {index}: {result.error}"
        # A cell that waits (event-driven, as the helpers wait), interrupted like the Stop button does.
        msg_id = kernel.start("from helpers import wait_until\nprint('waiting', flush=True)\n"
                              "wait_until(lambda: False, timeout=60)")
        kernel.wait_output(msg_id, "waiting", timeout=10)  # the cell's own code runs now
        kernel.manager.interrupt_kernel()
        reply = kernel.wait_reply(msg_id, timeout=10)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        problems = [f"cell {middle + i}: {e}" for i, e in
                    enumerate(kernel.run(c.source).error for c in cells[middle:]) if e and not cells[middle + i].may_raise]
        assert not problems, f"after the interrupt: {problems}"

        before_restart = kernel.helpers()
        kernel.manager.restart_kernel(now=True)
        kernel.pid = kernel.manager.provisioner.pid
        kernel.client.wait_for_ready(timeout=60)
        assert not gone_within(before_restart, 2.0), "helpers survived the restart"
        assert run_notebook(kernel, notebook) == []


@pytest.mark.parametrize("notebook", LESSONS)
def test_two_kernels_at_once_no_fd_leak_only_loopback_listeners(notebook, tmp_path):
    """Twice at the same time, with a 150-byte TMPDIR: no collision, no leaked fd, no public listener."""
    tmp = long_tmpdir(tmp_path)
    env = {"TMPDIR": str(tmp)}
    pids: set[int] = set()  # the two kernels; their helpers are found under them
    seen: set[tuple[str, str]] = set()
    stop = threading.Event()

    def audit():
        while not stop.wait(0.02):
            seen.update(listeners_of(pids))

    auditor = threading.Thread(target=audit, daemon=True)
    auditor.start()
    outcomes = {}

    def lesson(name):
        with Kernel(env) as kernel:
            pids.add(kernel.pid)
            cells = code_cells(notebook)
            first = kernel.run(cells[0].source)
            after_setup = kernel.fds()
            problems = [f"setup: {first.error}"] if first.error else []
            problems += [f"cell {i + 1}: {r.error}" for i, r in enumerate(kernel.run(c.source) for c in cells[1:])
                         if r.error and not cells[i + 1].may_raise]
            outcomes[name] = (problems, after_setup, kernel.settled_fds(after_setup), kernel.helpers())

    runners = [threading.Thread(target=lesson, args=(n,)) for n in ("first", "second")]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(300)
    stop.set()
    auditor.join()
    for name, (problems, after_setup, at_end, helpers_left) in outcomes.items():
        assert not problems, f"{name} kernel: {problems}"
        leaked = {fd: target for fd, target in at_end.items() if after_setup.get(fd) != target}
        assert len(at_end) == len(after_setup), f"{name} kernel: {len(after_setup)} fds after setup, now also {leaked}"
        assert not helpers_left, f"{name} kernel: helper processes left running at the end: {helpers_left}"
    assert len(outcomes) == 2
    public = sorted((proto, local) for proto, local in seen if reachable_from_outside(local))
    assert not public, f"the lesson listened on a non-loopback address: {public}"
