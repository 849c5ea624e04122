"""helpers.processes: children die with their parent, however it dies, and are stopped and reaped."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest

from helpers import Puppet, processes
from helpers.observe import wait_until

# An intermediate process: starts a puppet (through helpers.processes), says its pid, then waits.
_HOLDER = """
import threading
from helpers import Puppet
p = Puppet("grandchild")
print(p.pid, flush=True)
threading.Event().wait()
"""
_PDEATHSIG = """
import ctypes, os
from helpers import processes
{before}
libc = ctypes.CDLL(None)
sig = ctypes.c_int()
libc.prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG
print(os.getuid(), os.getgid(), os.getgroups(), sig.value, flush=True)
"""


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its new parent counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def short_tmpdir():
    """A TMPDIR for child processes whose workspaces must not linger in /tmp after a SIGKILL."""
    path = tempfile.mkdtemp(prefix="tproc-", dir="/tmp")  # not "sll-": a sweep of /tmp would take it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_grandchild_dies_when_its_parent_is_sigkilled(short_tmpdir):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=short_tmpdir))
    try:
        grandchild = int(holder.stdout.readline())
        assert psutil.Process(grandchild).ppid() == holder.pid
        assert not gone(grandchild)
        holder.kill()  # SIGKILL: nothing runs in the holder, no atexit
        holder.wait(5)
        assert wait_until(lambda: gone(grandchild), 2), "the grandchild outlived its parent"
    finally:
        holder.kill()
        holder.wait(5)
        holder.stdout.close()


def test_a_child_started_from_a_short_lived_thread_outlives_the_thread():
    # PR_SET_PDEATHSIG is tied to the thread that forked; start() must not fork from this one.
    started = []
    thread = threading.Thread(target=lambda: started.append((Puppet("from-thread"), threading.get_native_id())))
    thread.start()
    thread.join(10)
    puppet, tid = started[0]
    try:
        assert wait_until(lambda: not os.path.exists(f"/proc/self/task/{tid}"), 5)
        sock = puppet.socket()  # a full round trip: the puppet is alive after the thread is gone
        assert sock.fileno() == 3
        assert puppet.alive
    finally:
        puppet.stop()


def test_stop_terminates_and_reaps():
    puppet = Puppet("victim")
    pid = puppet.pid
    try:
        assert processes.stop(puppet._process.proc) == -signal.SIGTERM
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left
        assert not psutil.pid_exists(pid)
    finally:
        puppet.stop()


def test_stop_kills_a_child_that_ignores_sigterm():
    puppet = Puppet("stubborn")
    try:
        puppet.on_signal(signal.SIGTERM, "ignore")
        start = time.monotonic()
        assert processes.stop(puppet._process.proc, timeout=0.3) == -signal.SIGKILL
        assert time.monotonic() - start >= 0.3
    finally:
        puppet.stop()


def test_stop_all_stops_every_running_child():
    puppets = [Puppet("a"), Puppet("b")]
    try:
        processes.stop_all()
        assert [p.returncode for p in puppets] == [-signal.SIGTERM, -signal.SIGTERM]
        assert not {p.pid for p in puppets} & {c.pid for c in psutil.Process().children()}
    finally:
        for p in puppets:
            p.stop()


def test_die_with_parent_arms_the_death_signal():
    env = dict(os.environ, **{processes.PARENT_ENV: str(os.getpid())})
    code = _PDEATHSIG.format(before="processes.die_with_parent()")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == str(int(signal.SIGKILL))


def test_die_with_parent_exits_if_the_parent_is_already_gone():
    # The parent named in the environment is not our parent any more: exit at once.
    env = dict(os.environ, **{processes.PARENT_ENV: "1"})
    code = _PDEATHSIG.format(before="processes.die_with_parent()")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=10)
    assert (out.returncode, out.stdout) == (1, "")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can change its user")
def test_drop_privileges_to_nobody_rearms_the_death_signal():
    env = dict(os.environ, **{processes.PARENT_ENV: str(os.getpid())})
    code = _PDEATHSIG.format(before="processes.drop_privileges('nobody')")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    entry = pwd.getpwnam("nobody")
    assert out.stdout.split() == [str(entry.pw_uid), str(entry.pw_gid), "[]", str(int(signal.SIGKILL))]


@pytest.mark.parametrize(("child", "also_not"), [
    ("puppet_child", {"typing", "pickle", "re"}),  # the most started: ~30 ms of CPU, not ~40 (helpers/wire.py)
    ("exercises.sandbox", set()), ("exercises.holder", set()), ("capstone.framing_run", set()),
])
def test_a_child_imports_none_of_the_parent_side_modules(child, also_not):
    """Thousands of children start in a test run: the modules only a parent needs (subprocess to start
    them, dataclasses with inspect) would add their import time to every one."""
    unwanted = {"subprocess", "dataclasses", "inspect", *also_not}
    probe = f"import sys, helpers.{child}; print(*sorted({unwanted!r} & set(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(processes.__file__)))
    found = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert found.stdout.split() == [], f"helpers.{child} imports {found.stdout.strip()}"


# A process with a zombie child (never waited for) and a child that has a child of its own.
_FAMILY = """
import os, time
zombie = os.fork()
if zombie == 0:
    os._exit(0)
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(60)
        os._exit(0)
    print(zombie, os.getpid(), grandchild, flush=True)
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


@pytest.mark.parametrize("children_files", [True, False], ids=["children files", "every stat file"])
def test_descendants_finds_grandchildren_and_leaves_out_zombies_unless_asked(children_files, monkeypatch):
    if children_files and not processes._CHILDREN_FILES:
        pytest.skip("this kernel has no /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)")
    monkeypatch.setattr(processes, "_CHILDREN_FILES", children_files)
    family = subprocess.Popen([sys.executable, "-c", _FAMILY], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        zombie, child, grandchild = map(int, family.stdout.readline().split())
        assert wait_until(lambda: (processes.stat_fields(zombie) or ["?"])[0] == "Z", 5.0)
        assert sorted(processes.descendants(family.pid)) == sorted([child, grandchild])
        assert sorted(processes.descendants(family.pid, zombies=True)) == sorted([zombie, child, grandchild])
        assert processes.descendants(grandchild) == []
    finally:
        os.killpg(family.pid, signal.SIGKILL)  # the whole family: forks stay in the group
        family.wait()
        family.stdout.close()
