"""A puppet's process as the notebook's kernel sees it: a child of its own, or a child of another puppet.

    Spawned(popen)         Puppet("server"): the kernel started it, so Popen knows how it ended
    Forked(pid, parent)    srv.fork(): the parent puppet forked it; its exit status is the parent's
                           to collect (waitpid), and until then it is a zombie (state Z), whose
                           /proc/<pid>/stat still holds that status

Both answer what `helpers.puppet.Puppet` asks of its process: alive?, its status (Popen's convention:
-N for signal N, None while not known), wait for its end, stop it for good. `open_ends()` is how the
kernel gets its ends of a forked child's pipes: through /proc, from the parent puppet that made them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

from helpers import observe, processes

if TYPE_CHECKING:
    from helpers.puppet import Puppet

__all__ = ["Forked", "Spawned", "open_ends"]


class Spawned:
    """A puppet this kernel started (`processes.start`): its own child."""

    unknown_end = "exited (status None)"

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.pid = proc, proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float) -> int:
        """Its pipes are closed: give it `timeout` to exit, then terminate, then kill; reap it."""
        self.wait(timeout)
        return processes.stop(self.proc, timeout)


class Forked:
    """A puppet forked by another puppet: the kernel can watch it in /proc, but cannot reap it."""

    def __init__(self, pid: int, parent: Puppet):
        self.pid, self.parent = pid, parent
        self.status: int | None = None  # once seen: from its parent's waitpid(), or from its zombie
        self.unknown_end = (f"has ended; its exit status was for its parent {parent.name} (pid {parent.pid}) "
                            f"to collect")

    def _ended(self) -> tuple[bool, int | None]:
        """(ended, exit status in waitpid's form if its zombie still holds it), from /proc/<pid>/stat.

        Ended means ready to be reaped: a zombie whose threads are all gone (its main thread shows
        Z while the others are still exiting, and waitpid() cannot collect it yet), or no longer
        its parent's child at all (reaped, or orphaned as its parent died).
        """
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return True, None
        state, parent, threads, status = fields[0], int(fields[1]), int(fields[17]), int(fields[49])  # proc(5)
        if parent != self.parent.pid:
            return True, None
        zombie = state in "ZX" and threads == 1
        return zombie, status if zombie else None

    def alive(self) -> bool:
        return self.status is None and not self._ended()[0]

    def returncode(self) -> int | None:
        if self.status is None:
            status = self._ended()[1]
            if status is not None:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def wait(self, timeout: float) -> int | None:
        """Wait until it has ended and, if its parent is reaping it right now, until the status is kept."""
        observe.wait_until(lambda: not self.alive() and (self.returncode() is not None or not self.parent.waiting),
                           timeout)
        return self.returncode()

    def stop(self, timeout: float) -> int | None:
        """Its pipes are closed: it exits (killed if it does not within `timeout`) and stays a zombie of
        its parent, until the parent reaps it with waitpid() or ends (a puppet reaps on its way out)."""
        if not observe.wait_until(lambda: not self.alive(), timeout):
            try:
                os.kill(self.pid, signal.SIGKILL)  # alive, so not reaped: the pid is still this child's
            except ProcessLookupError:
                pass
        return self.wait(timeout)


def open_ends(pid: int, fds: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Our own descriptors for the kernel's ends (cmd, reply, side, events) of a forked child's pipes,
    which process `pid` holds as `fds`: opening /proc/<pid>/fd/<n> opens the very same pipe.

    Opened with O_NONBLOCK, because opening a pipe (a FIFO) waits for the other end: for writing,
    a child already gone fails with ENXIO rather than hanging. Made blocking afterwards, as the
    pipes of a spawned puppet are.
    """
    ends: list[int] = []
    try:
        for fd, mode in zip(fds, (os.O_WRONLY, os.O_RDONLY, os.O_WRONLY, os.O_RDONLY), strict=True):
            ends.append(os.open(f"/proc/{pid}/fd/{fd}", mode | os.O_NONBLOCK | os.O_CLOEXEC))
            os.set_blocking(ends[-1], True)
    except BaseException:
        for end in ends:
            os.close(end)
        raise
    return ends[0], ends[1], ends[2], ends[3]
