"""A student's program (`python server.py PATH`) run as a real process that the gauntlet owns.

    kernel ── helpers.capstone.launch ──exec──> python server.py PATH
                                                (its own process group; dies with the kernel)

Each program gets its own process group, so that whatever it starts (a forked child) is found
and killed with it; its output goes to a file (a pipe nobody reads could block it); it is reaped
with wait4, which also says how much CPU it used.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

from helpers import processes
from helpers.kernel_view import fds, unix_sockets
from helpers.observe import pausing, wait_until
from helpers.socket_dir import workspace

__all__ = ["Program", "group_members", "start", "stop_programs"]



def group_members(pgid: int) -> list[int]:
    """Pids of the live processes (zombies aside) in process group `pgid`."""
    members = []
    for name in os.listdir("/proc"):
        fields = processes.stat_fields(int(name)) if name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(name))
    return members


_outputs = itertools.count(1)
# Every Program that start() made: a cell run twice reassigns its variable, and the first program
# must still be stopped by stop_programs() rather than run on, unreachable, until the kernel exits.
_started: list[Program] = []


def start(file: str, *args: str) -> Program:
    """`python file args...` as a Program, its output kept in the kernel's workspace. Used in 09-capstone."""
    program = Program(file, *args, output=os.path.join(workspace().dir, f"program-{next(_outputs)}.out"))
    _started.append(program)
    return program


def stop_programs() -> int:
    """Kill every program start() made that is still running (the last cell of 09); returns how many were."""
    running = [program for program in _started if program.running()]
    for program in _started:
        program.kill()
    _started.clear()
    return len(running)


class Program:
    """`python <file> <args>` in a process group of its own; always stopped with `kill()`."""

    def __init__(self, file: str, *args: str, output: str, umask: int = 0o002):
        """Start it; its standard output goes to `output`, its standard error to `output` + '.err'."""
        self.file, self.args, self.output_path, self.errors_path = file, args, output, output + ".err"
        with open(self.output_path, "wb") as out, open(self.errors_path, "wb") as err:
            self.proc = processes.start("capstone.launch", os.path.abspath(file), *args, stdout=out, stderr=err,
                                        process_group=0, umask=umask, cwd=os.path.dirname(os.path.abspath(file)))
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.ended: float | None = None
        self.status: int | None = None  # as Popen.returncode: -N when killed by signal N
        self.cpu_seconds = 0.0

    # -- its life ------------------------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit status if it has ended (reaped here, with its CPU time), else None."""
        if self.status is None:
            try:
                pid, wait_status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, wait_status, usage = self.pid, 0, None
            if pid:
                self.status = os.waitstatus_to_exitcode(wait_status)
                self.proc.returncode = self.status  # Popen must not wait for it again
                self.ended = time.monotonic()
                self.cpu_seconds = usage.ru_utime + usage.ru_stime if usage else 0.0
        return self.status

    def running(self) -> bool:
        return self.poll() is None

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for it to end; its exit status, or None if still running."""
        wait_until(lambda: not self.running(), timeout)
        return self.poll()

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def kill(self) -> list[int]:
        """Kill it and everything left in its process group; return the pids found left behind."""
        left = [pid for pid in group_members(self.pid) if pid != self.pid]
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.wait(5.0) is None:  # SIGKILL cannot be caught: only a process stuck in the kernel lasts
            raise RuntimeError(f"{self.file} (pid {self.pid}) did not end after SIGKILL")
        wait_until(lambda: not group_members(self.pid), 5.0)
        return left

    def __repr__(self) -> str:
        state = "running" if self.running() else self.how_it_ended()
        return f"<{os.path.basename(self.file)} pid={self.pid} {state}>"

    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    # -- what it shows -------------------------------------------------------------------------------

    def output(self, errors: bool = False) -> str:
        """What it printed on its standard output (or, with `errors`, its standard error): its whole lines
        while it runs, everything once it has ended. Unbuffered (PYTHONUNBUFFERED), print() writes a line
        and its newline in two writes, and a reader in between would see half of the line."""
        ended = not self.running()  # asked first: after it, the file holds all it will ever hold
        try:
            with open(self.errors_path if errors else self.output_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if ended else text[:text.rfind("\n") + 1]

    def last_words(self) -> str:
        """The last line it wrote on its standard error (where errors and tracebacks go), quoted; '' if none."""
        lines = [line.strip() for line in self.output(errors=True).splitlines() if line.strip()]
        return f" and said {lines[-1][:160]!r}" if lines else ""

    def how_it_ended(self) -> str:
        status = self.poll()
        if status is None:
            return "is still running"
        if status < 0:
            return f"was killed by {signal.Signals(-status).name}"
        return f"exited with status {status}{self.last_words()}"

    def sockets(self) -> set[int]:
        """Inodes of the sockets it holds now (from /proc/<pid>/fd)."""
        try:
            links = fds(self.pid).values()
        except OSError:
            return set()
        return {int(link[8:-1]) for link in links if link.startswith("socket:[")}

    def listens_at(self, path: str) -> bool:
        """Does it hold a listening socket bound to `path` (/proc/net/unix)?"""
        table = unix_sockets()
        return any(table.get(inode, {}).get("path") == path and table[inode]["state"] == "LISTEN"
                   for inode in self.sockets())

    def sleeping_between_tries(self) -> bool:
        """Is it asleep in a waiting call (time.sleep, select, poll)? A client's backoff looks like this."""
        return pausing(self.pid)
