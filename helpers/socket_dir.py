"""A private directory per kernel for socket files, with paths that always fit in sun_path.

An AF_UNIX address is a path of at most 107 bytes plus the terminating NUL (`sun_path[108]`). A
long TMPDIR would push our socket paths past that, so the workspace lives in TMPDIR only when
there is room, and otherwise in the first short, writable one of /tmp, /dev/shm, /var/tmp.

    <base>/sll-<pid>-<random>/         mode 0700: only we can reach the socket files inside
        owner                          "<pid> <process start time>" of the kernel that owns it
        server.sock ...

The directory is removed when the kernel exits. A kernel killed with SIGKILL cannot clean up, so
the next workspace created sweeps directories whose owner is no longer alive. Introduced in 02.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import stat
import tempfile

from helpers.explain import for_notebook
from helpers.kernel_view import unix_sockets

__all__ = ["SUN_PATH_MAX", "Workspace", "short_base", "workspace"]

SUN_PATH_MAX = 107  # bytes of path; the 108th byte of sun_path holds the NUL
_PREFIX = "sll-"
_ROOM_FOR_NAMES = 40  # "/sll-<pid>-<8 chars>/" plus a socket name of up to ~20 bytes
_FALLBACKS = ("/tmp", "/dev/shm", "/var/tmp")
_WORKSPACE_NAME = re.compile(_PREFIX + r"(\d+)-[a-z0-9_]{8}")  # mkdtemp's 8 random characters


def _start_time(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None if gone.

    Ticks since boot never change for a process. A wall-clock start time (psutil's create_time)
    is derived from the boot time, which Linux recomputes on each read and which moves when the
    clock is adjusted: two kernels could then disagree about a live one and sweep its workspace.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def short_base(room: int = _ROOM_FOR_NAMES) -> str:
    """The first writable one of TMPDIR, /tmp, /dev/shm, /var/tmp that leaves `room` bytes of sun_path."""
    candidates = [tempfile.gettempdir(), *_FALLBACKS]
    for base in candidates:
        if len(os.fsencode(base)) + room <= SUN_PATH_MAX and os.access(base, os.W_OK | os.X_OK):
            return base
    raise OSError(f"no writable temporary directory short enough for socket paths among {candidates}")


def _owner_alive(directory: str) -> bool:
    """Is the kernel named in `sll-<pid>-...` still the one that made the directory?

    The pid alone could have been reused, so the owner file's start time must match too; a
    directory whose owner file is not there yet, or still empty (created, not yet written),
    belongs to a kernel starting right now.
    """
    started_now = _start_time(int(_WORKSPACE_NAME.fullmatch(os.path.basename(directory)).group(1)))
    if started_now is None:
        return False
    try:
        with open(os.path.join(directory, "owner")) as f:
            owner = f.read().split()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return not owner or owner[1:] == [started_now]


def sweep(base: str) -> list[str]:
    """Remove workspaces in `base` that belong to us and whose kernel is gone; return their paths."""
    removed = []
    for entry in os.scandir(base):
        if not _WORKSPACE_NAME.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue  # only what Workspace() makes: never someone else's "sll-something"
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or _owner_alive(entry.path):
                continue
        except FileNotFoundError:  # another kernel swept or removed it while we looked
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


class Workspace:
    """The kernel's private directory. `path(name)` gives a socket path that fits sun_path."""

    def __init__(self):
        base = short_base()
        self.swept = sweep(base)
        self.dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)  # mkdtemp: mode 0700
        with open(os.path.join(self.dir, "owner"), "w") as f:
            f.write(f"{os.getpid()} {_start_time(os.getpid())}")
        atexit.register(self.remove)

    def path(self, name: str) -> str:
        """The full path of `name` inside the workspace; refuses names that would not fit sun_path."""
        if "/" in name or name in ("", ".", "..", "owner"):
            raise for_notebook(ValueError(f"{name!r}: give a plain file name such as 'server.sock'"), "workspace().path")
        full = os.path.join(self.dir, name)
        if len(os.fsencode(full)) > SUN_PATH_MAX:
            raise for_notebook(ValueError(
                f"{name!r} makes a {len(os.fsencode(full))}-byte path; sun_path holds at most "
                f"{SUN_PATH_MAX} bytes plus the NUL. Use a shorter name."
            ), "workspace().path")
        return full

    def fresh_path(self, name: str) -> str:
        """path(name), with whatever an earlier run left at that name removed: a cell that binds it can run twice.

        Only for our own private directory, where nothing else lives: never unlink a path a live
        server may own (connect first, see 02-bind-and-unlink). Introduced in 06-close-semantics.
        """
        full = self.path(name)
        try:
            os.unlink(full)
        except FileNotFoundError:
            pass
        return full

    def abstract(self, name: str) -> str:
        """An abstract AF_UNIX name (Linux) that no socket holds now: "\\0" + a prefix unique to this kernel + `name`.

        Abstract names live in one namespace shared by every process of the machine (of the network
        namespace), with no directory to keep them apart: the prefix keeps two kernels running the
        same lesson from colliding. No file is created, so there is nothing to unlink; and nothing
        *can* be unlinked, so when a socket from an earlier run of the same cell still holds the name,
        `name-2` (then `-3`, ...) is returned instead: the cell can run twice. Introduced in 02.
        """
        if not name or "\0" in name:
            raise for_notebook(ValueError(f"{name!r}: give a plain name such as 'hello'"), "workspace().abstract")
        held = {entry["path"] for entry in unix_sockets().values()}  # abstract ones shown as "@..."
        base = f"{os.path.basename(self.dir)}/{name}"
        candidate, n = base, 1
        while f"@{candidate}" in held:
            n += 1
            candidate = f"{base}-{n}"
        return f"\0{candidate}"

    def sockets(self) -> list[str]:
        """Names of the socket files currently in the workspace."""
        return sorted(e.name for e in os.scandir(self.dir) if stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"Workspace({self.dir!r})"


_current: Workspace | None = None


def workspace() -> Workspace:
    """The kernel's workspace, created (and old ones swept) on first use."""
    global _current
    if _current is None or not os.path.isdir(_current.dir):
        _current = Workspace()
    return _current
