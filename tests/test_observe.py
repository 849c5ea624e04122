"""helpers.observe against real processes and threads: what /proc says while they sleep in the kernel."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time

import pytest

from helpers import observe

pytestmark = pytest.mark.skipif(not observe.syscalls_visible(), reason="/proc does not show system calls here")

# A child that prints the fd it is about to wait on, then waits in the kernel.
_ACCEPTER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.fileno(), s.getsockname()[1], flush=True)
conn, _ = s.accept()
print("accepted", flush=True)
"""
_POLLER = """
import os, select
r1, _w1 = os.pipe()
r2, _w2 = os.pipe()
p = select.poll()
p.register(r1, select.POLLIN)
p.register(r2, select.POLLIN)
print(r1, r2, flush=True)
p.poll()
"""


@pytest.fixture
def child():
    """Run a Python snippet in a child; it is killed and reaped after the test."""
    procs = []

    def run(code: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_syscall_tables_name_the_calls_of_the_course():
    if platform.machine() == "x86_64":
        assert observe.SYSCALLS[288] == "accept4"
        assert observe.SYSCALLS[42] == "connect"
        assert observe.SYSCALLS[7] == "poll"
    assert {"accept4", "connect", "read", "recvfrom", "poll"} <= set(observe.SYSCALLS.values())


def test_process_blocked_in_accept_shows_accept4_with_its_fd_and_wchan(child):
    proc = child(_ACCEPTER)
    fd, port = map(int, proc.stdout.readline().split())
    snap = observe.wait_until_blocked(proc.pid, timeout=5)
    assert snap is not None, observe.snapshot(proc.pid)
    assert snap.syscall == "accept4"
    if platform.machine() == "x86_64":
        assert open(f"/proc/{proc.pid}/syscall").read().split()[0] == "288"
    assert snap.fd == fd
    assert snap.state == "S" and snap.sleeping
    assert snap.wchan not in ("", "0")
    assert snap.describe() == f"blocked in accept4(fd={fd}), sleeping in {snap.wchan}"

    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5):
        assert proc.stdout.readline() == "accepted\n"
    proc.wait(5)


def test_thread_blocked_in_read_of_a_pipe():
    r, w = os.pipe()
    tid = []
    got = []

    def reader():
        tid.append(threading.get_native_id())
        got.append(os.read(r, 10))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert observe.wait_until(lambda: tid, 5)
        snap = observe.wait_until_blocked(os.getpid(), tid[0], timeout=5)
        assert snap is not None
        assert (snap.pid, snap.tid) == (os.getpid(), tid[0])
        assert snap.syscall == "read" and snap.fd == r and snap.state == "S"
        assert "pipe" in snap.wchan
        assert snap.shown_args == f"fd={r}"
        # The same thread as a puppet's idle command reader: sleeping on its own pipe is no call.
        assert observe.blocked_in_call(os.getpid(), tid[0], own_fds=(r,)) is None
        assert observe.blocked_in_call(os.getpid(), tid[0], own_fds=(w,)) == snap
    finally:
        os.write(w, b"wake")
        thread.join(5)
        os.close(r)
        os.close(w)
    assert got == [b"wake"]


def test_thread_waiting_for_a_lock_is_not_blocked_in_a_call():
    lock = threading.Lock()
    lock.acquire()
    tid = []

    def waiter():
        tid.append(threading.get_native_id())
        with lock:
            pass

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert observe.wait_until(lambda: tid and observe.snapshot(os.getpid(), tid[0]).syscall == "futex", 5)
        assert observe.blocked_in_call(os.getpid(), tid[0]) is None
    finally:
        lock.release()
        thread.join(5)


def test_poll_shows_the_descriptors_it_waits_for(child):
    proc = child(_POLLER)
    fds = tuple(map(int, proc.stdout.readline().split()))
    snap = observe.wait_until_blocked(proc.pid, timeout=5)
    assert snap is not None
    assert snap.syscall in ("poll", "ppoll")
    assert snap.poll_fds == fds
    assert snap.shown_args == f"fds={list(fds)}"
    assert snap.describe().startswith(f"blocked in {snap.syscall}(fds={list(fds)})")


def test_snapshot_of_an_exited_process_says_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(5)
    snap = observe.snapshot(proc.pid)
    assert snap.state == "gone"
    assert snap.syscall is None and not snap.sleeping
    assert snap.describe() == "exited"


def test_snapshot_of_an_unreaped_child_says_zombie():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        snap = observe.wait_until(lambda: observe.snapshot(proc.pid).state == "Z" and observe.snapshot(proc.pid), 5)
        assert snap is not None
        assert snap.describe() == "exited (zombie)"
    finally:
        proc.wait(5)


def test_running_process_is_not_blocked_and_wait_gives_up_in_time(child):
    proc = child("while True: pass")
    assert observe.wait_until(lambda: observe.snapshot(proc.pid).state == "R", 5)
    start = time.monotonic()
    assert observe.wait_until_blocked(proc.pid, timeout=0.3) is None
    assert 0.3 <= time.monotonic() - start < 1.5


def test_wait_until_blocked_returns_soon_after_the_call_blocks(child):
    proc = child(_ACCEPTER)
    proc.stdout.readline()
    start = time.monotonic()
    assert observe.wait_until_blocked(proc.pid, timeout=5) is not None
    assert time.monotonic() - start < 1.0


def test_wait_until_returns_the_value_or_none_on_timeout():
    start = time.monotonic()
    assert observe.wait_until(lambda: 0, 0.1) is None
    assert 0.1 <= time.monotonic() - start < 1.0
    assert observe.wait_until(lambda: "ready", 1) == "ready"

    flag = threading.Event()
    timer = threading.Timer(0.05, flag.set)
    timer.start()
    start = time.monotonic()
    assert observe.wait_until(flag.is_set, 5) is True
    assert time.monotonic() - start < 1.0
    timer.join()
