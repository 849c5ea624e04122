"""helpers.socket_dir: a private directory whose socket paths always fit sun_path, swept after a crash."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

from helpers import socket_dir as ws_module
from helpers.socket_dir import SUN_PATH_MAX, Workspace, sweep

# A kernel stand-in that makes its workspace and dies by SIGKILL, so no atexit cleanup runs.
_CRASHING_KERNEL = """
import os, signal
from helpers.socket_dir import workspace
print(workspace().dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def base(monkeypatch):
    """A short private TMPDIR: workspaces go there, and sweeping it touches nothing else."""
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches; make it read TMPDIR again
    monkeypatch.setattr(ws_module, "_current", None)
    path = tempfile.mkdtemp(prefix="tws-", dir="/tmp")
    monkeypatch.setenv("TMPDIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fake_workspace(base: str, pid: int, owner: str | None, suffix: str = "abcdefgh") -> str:
    path = os.path.join(base, f"sll-{pid}-{suffix}")
    os.mkdir(path, 0o700)
    if owner is not None:
        with open(os.path.join(path, "owner"), "w") as f:
            f.write(owner)
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(5)
    return proc.pid


def test_workspace_is_a_private_directory_in_tmpdir(base):
    ws = Workspace()
    try:
        assert os.path.dirname(ws.dir) == base
        assert os.path.basename(ws.dir).startswith(f"sll-{os.getpid()}-")
        assert stat.S_IMODE(os.stat(ws.dir).st_mode) == 0o700
        with open(os.path.join(ws.dir, "owner")) as f:
            pid, started = f.read().split()
        assert int(pid) == os.getpid()
        with open("/proc/self/stat") as f:
            assert started == f.read().rsplit(")", 1)[1].split()[19]  # start time in ticks since boot
    finally:
        ws.remove()
    assert not os.path.exists(ws.dir)


def test_workspace_function_makes_one_and_remakes_it_if_deleted(base):
    first = ws_module.workspace()
    try:
        assert ws_module.workspace() is first
        first.remove()
        second = ws_module.workspace()
        assert second is not first and os.path.isdir(second.dir)
        second.remove()
    finally:
        first.remove()


def test_a_150_byte_tmpdir_still_gives_socket_paths_that_bind(base, monkeypatch):
    deep = base
    while len(deep) < 150:
        deep = os.path.join(deep, "d" * 20)
    deep = deep[:150]
    os.makedirs(deep)
    assert len(os.fsencode(deep)) == 150
    monkeypatch.setenv("TMPDIR", deep)
    ws = Workspace()
    try:
        assert not ws.dir.startswith(deep)
        assert stat.S_IMODE(os.stat(ws.dir).st_mode) == 0o700
        path = ws.path("server.sock")
        assert len(os.fsencode(path)) <= SUN_PATH_MAX
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)
            assert ws.sockets() == ["server.sock"]
    finally:
        ws.remove()


def test_path_accepts_exactly_107_bytes_and_refuses_108(base):
    ws = Workspace()
    try:
        room = SUN_PATH_MAX - len(os.fsencode(ws.dir)) - 1
        longest = ws.path("n" * room)
        assert len(os.fsencode(longest)) == SUN_PATH_MAX
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(longest)  # the kernel takes it: 107 bytes + NUL
        with pytest.raises(ValueError, match=r"108-byte path; sun_path holds at most 107 bytes"):
            ws.path("n" * (room + 1))
    finally:
        ws.remove()


@pytest.mark.parametrize("name", ["a/b.sock", "../x.sock", "/tmp/x.sock", "", ".", "..", "owner"])
def test_path_refuses_names_that_are_not_plain_file_names(base, name):
    ws = Workspace()
    try:
        with pytest.raises(ValueError, match="plain file name"):
            ws.path(name)
    finally:
        ws.remove()


def test_sweep_removes_the_workspace_of_a_kernel_killed_with_sigkill(base):
    crashed = subprocess.run([sys.executable, "-c", _CRASHING_KERNEL], capture_output=True, text=True, timeout=10)
    assert crashed.returncode == -signal.SIGKILL
    left_behind = crashed.stdout.strip()
    assert os.path.dirname(left_behind) == base and os.path.isdir(left_behind)

    ws = Workspace()  # the next kernel's workspace sweeps on creation
    try:
        assert ws.swept == [left_behind]
        assert not os.path.exists(left_behind)
    finally:
        ws.remove()


def test_sweep_spares_live_workspaces_other_users_and_other_files(base):
    mine = Workspace()
    try:
        unrelated = os.path.join(base, "not-ours")
        os.mkdir(unrelated)
        dead = _dead_pid()
        reused = _fake_workspace(base, os.getpid(), f"{os.getpid()} 12345.00", "reused00")  # our pid, wrong start
        stale = _fake_workspace(base, dead, f"{dead} 12345.00", "stale000")
        garbled = _fake_workspace(base, os.getpid(), "garbage", "garbled0")
        assert sorted(sweep(base)) == sorted([reused, stale, garbled])
        assert os.path.isdir(mine.dir) and os.path.isdir(unrelated)
    finally:
        mine.remove()


def test_sweep_spares_directories_it_did_not_make_even_with_our_prefix(base):
    dead = _dead_pid()
    lookalikes = [os.path.join(base, name) for name in ("sll-notes", f"sll-{dead}-short", f"sll-{dead}-toolong123")]
    for path in lookalikes:
        os.mkdir(path)
    assert sweep(base) == []
    assert all(os.path.isdir(path) for path in lookalikes)


def test_sweep_spares_a_workspace_being_created(base):
    # Between mkdtemp and the write of its owner file, a workspace has no owner file, then an empty one.
    no_owner_yet = _fake_workspace(base, os.getpid(), None, "creating")
    empty_owner = _fake_workspace(base, os.getpid(), "", "creatin2")
    dead = _dead_pid()
    abandoned = _fake_workspace(base, dead, None, "abandon0")
    assert sweep(base) == [abandoned]
    assert os.path.isdir(no_owner_yet) and os.path.isdir(empty_owner)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by another user")
def test_sweep_leaves_another_users_workspace_alone(base):
    theirs = _fake_workspace(base, _dead_pid(), "1 1.00", "theirs00")
    nobody = pwd.getpwnam("nobody")
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    assert sweep(base) == []
    assert os.path.isdir(theirs)


def test_kernels_sweeping_at_the_same_time_do_not_trip_over_each_other(base):
    """Two kernels starting together sweep the same dead workspaces: one removes what the other is looking at."""
    dead = _dead_pid()
    for i in range(300):
        _fake_workspace(base, dead, f"{dead} 1", f"dead{i:04d}")
    sweepers = [subprocess.Popen([sys.executable, "-c", f"from helpers.socket_dir import sweep; sweep({base!r})"],
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in sweepers]
    assert all(p.returncode == 0 for p in sweepers), errors
    assert os.listdir(base) == []
