"""Helper subprocesses that can never outlive the notebook kernel that started them.

Three ways a kernel goes away, and what takes the children with it:

    kernel exits normally       -> atexit: stop_all() terminates, then kills, every child
    shutdown / restart          -> children share the kernel's process group, so a SIGKILL to the
                                   group (nbval, jupyter_client) reaches them too; an interrupt's
                                   SIGINT reaches them as well, and puppets ignore it on purpose
    `kill -9` of the kernel     -> nothing runs in the kernel; the child asked the Linux kernel for
                                   PR_SET_PDEATHSIG = SIGKILL, so it is killed when its parent dies

Children start as `sys.executable -m helpers.<module>` (never through a shell) and call
`die_with_parent()` first thing. Introduced in 00-start-here.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import queue
import signal
import sys
import threading
import weakref

# `subprocess` and `sysconfig` are imported by the functions that start and stop children, not here:
# every child imports this module for die_with_parent(), and they would add ~8 ms of CPU to each of
# the thousands of puppets and sandboxes a test run starts. Nor `typing`, for its TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

__all__ = ["PARENT_ENV", "descendants", "die_with_parent", "drop_privileges", "start", "stat_fields", "stop",
           "stop_all"]

PARENT_ENV = "SLL_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_children: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()


_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the directory holding helpers/


def start(module: str, *args: str, pass_fds=(), skip_site: bool = False, **popen_kwargs) -> subprocess.Popen:
    """Start `python -m helpers.<module> args...` as a child that dies with this process.

    `skip_site`: Python starts without `site` (python -S), which skips the installed packages'
    start-up hooks (their .pth files, the editable install's finder among them): tens of
    milliseconds of CPU per start, and the checkers start a process for every run. helpers/ and
    the installed packages stay importable: their directories go on PYTHONPATH.
    """
    import subprocess
    import sysconfig

    env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
    if skip_site:
        packages = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, *packages, os.environ.get("PYTHONPATH")]))
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    argv = [sys.executable, *(["-S"] if skip_site else []), "-m", f"helpers.{module}", *args]
    proc = _fork_in_lasting_thread(lambda: subprocess.Popen(argv, pass_fds=pass_fds, env=env, **popen_kwargs))
    _children.add(proc)
    return proc


_fork_requests: queue.SimpleQueue = queue.SimpleQueue()
_forker: threading.Thread | None = None
_forker_lock = threading.Lock()


def _fork_in_lasting_thread(popen):
    """Run `popen()` in a thread that lives as long as this process; return its Popen.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the whole process: a
    child started from a short-lived thread (a worker, a timer) would be killed the moment that
    thread returned. The main thread lasts, so it forks itself; other threads hand the fork to one
    daemon thread kept for it.
    """
    global _forker
    if threading.current_thread() is threading.main_thread():
        return popen()
    with _forker_lock:
        if _forker is None:
            _forker = threading.Thread(target=_fork_forever, daemon=True, name="helpers-forker")
            _forker.start()
    answer: queue.SimpleQueue = queue.SimpleQueue()
    _fork_requests.put((popen, answer))
    ok, value = answer.get()
    if not ok:
        raise value
    return value


def _fork_forever() -> None:
    while True:
        popen, answer = _fork_requests.get()
        try:
            answer.put((True, popen()))
        except BaseException as error:  # handed back to the thread that asked
            answer.put((False, error))


def stop(proc: subprocess.Popen, timeout: float = 2.0) -> int:
    """Terminate, wait up to `timeout`, then kill; always reap. Returns the exit status."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    rc = proc.wait()
    _children.discard(proc)
    return rc


def stop_all() -> None:
    """Stop every child this process started and that is still running."""
    for proc in list(_children):
        stop(proc, timeout=0.5)


atexit.register(stop_all)


def die_with_parent(parent: int | None = None) -> None:
    """In a child: ask for SIGKILL when the parent dies, and exit now if it already has.

    The check after prctl closes the race where the parent dies between fork and prctl: the child
    would then have been re-parented already and no signal would ever come. `parent`: the pid the
    child was forked from (a puppet's forked child); by default the one `start()` put in PARENT_ENV.
    """
    expected = parent or int(os.environ.get(PARENT_ENV, "0"))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected and os.getppid() != expected:
        os._exit(1)


def drop_privileges(user: str) -> None:
    """In a child running as root: become `user` (groups, gid, uid), then re-arm the death signal.

    Linux clears PR_SET_PDEATHSIG when credentials change, so it is set again afterwards.
    """
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    die_with_parent()


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ... (proc(5), from
    field 3 on); None once the process is gone. Read without psutil, which costs its importer ~25 ms."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


# Where the kernel lists each thread's children (CONFIG_PROC_CHILDREN: Debian's and Ubuntu's kernels).
_CHILDREN_FILES = os.path.exists("/proc/thread-self/children")


def descendants(pid: int, zombies: bool = False) -> list[int]:
    """Pids of the processes under `pid` (children, theirs, ...), zombies left out unless asked for.

    Walks down through /proc/<pid>/task/<tid>/children, a few small files, instead of reading the
    stat file of every process on the machine (milliseconds on a busy one, and each exercise sandbox
    looks at least once); a kernel without those files gets the machine-wide reading. Either way a
    process forked while we look may be missed: callers that must catch everything look again.
    """
    if not _CHILDREN_FILES:
        return _descendants_from_every_stat(pid, zombies)
    found, parents = [], [pid]
    while parents:
        parent = parents.pop()
        for tid in _threads(parent):
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    children = [int(child) for child in f.read().split()]
            except OSError:  # the thread or the process ended while we looked
                continue
            parents += children
            found += [child for child in children if zombies or _running(child)]
    return found


def _threads(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent's wait() is missing)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in "ZX"


def _descendants_from_every_stat(pid: int, zombies: bool) -> list[int]:
    children: dict[int, list[int]] = {}
    dead = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := stat_fields(int(name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
            if fields[0] in "ZX":
                dead.add(int(name))
    found, parents = [], [pid]
    while parents:
        for child in children.get(parents.pop(), []):
            parents.append(child)
            if zombies or child not in dead:
                found.append(child)
    return found
