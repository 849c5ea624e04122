"""The process that runs a student's function, and that outlives everything the function starts.

`run_isolated` (in the kernel) starts `python -m helpers.exercises.sandbox` and sends it a job.
This supervisor becomes a *subreaper* (PR_SET_CHILD_SUBREAPER): every process the student's code
starts, even one that detaches with setsid or a double fork, stays its descendant. It forks the
student's process, times the call from outside, and then kills whatever is left:

    kernel                       supervisor (subreaper)                 student's process (own session)
    job on stdin  ---------->    fork  ---------------------------->    exec(source); "S"; f(*args); "R"
                                 output pipe: keep first and last  <--  print(...)
                                 result pipe: S and R, each timed  <--  {"value": ..., "left_open": ...}
                                 wait4: CPU seconds; kill and reap every descendant still there
                 <----------     one JSON report (plain data: nothing in it can run code)

Every wait has a deadline. If the kernel goes away, the supervisor gets SIGTERM (PR_SET_PDEATHSIG)
and kills the student's processes before it dies; the student's process itself gets SIGKILL.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import warnings

from helpers import processes
from helpers.exercises import plain

__all__ = ["PRELUDE", "main"]

PRELUDE = "import errno, os, random, select, selectors, signal, socket, stat, threading, time\n"
OUTPUT_KEPT = 4096  # bytes of printed output kept from the start, and as many from the end
RESULT_LIMIT = 8_000_000  # bytes of result JSON; a bigger value is shown by its repr only
THREAD_GRACE = 0.5  # seconds a thread still running at the return gets to finish (a cancelled Timer)
CHILD_GRACE = 0.5  # seconds a child process still running when the function ended gets to exit
AFTER_RETURN = 3.0  # seconds for the bookkeeping after the return (garbage collection, the fd scan)
KILL_DEADLINE = 3.0  # seconds to kill and reap what is left
# A mark on the result pipe: its letter (S: started, R: returned) and the moment, read by the student's
# process from the machine's monotonic clock, not when the supervisor gets round to reading the pipe.
_MARK = struct.Struct("=cd")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


# -- in the student's process ------------------------------------------------------------------


def _open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def _returned_sockets(value) -> set[int]:
    """Descriptors of sockets the function returned (one that hands back a socket keeps it open)."""
    import socket

    items = value if isinstance(value, list | tuple) else [value]
    return {v.fileno() for v in items if isinstance(v, socket.socket)}


def _lingering_threads() -> list[str]:
    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]


def _student(source: str, name: str, args: tuple, repeat: int | None, out_w: int, result_w: int) -> None:
    """Run in the forked child: become a session of its own, run the function, report, _exit."""
    os.setsid()  # its own session and process group: a Ctrl-C of the notebook is not its business
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    for fd in _open_fds():
        if fd > 2 and fd != result_w:
            try:
                os.close(fd)
            except OSError:
                pass
    sys.stdout.reconfigure(line_buffering=True, write_through=True)
    sys.stderr.reconfigure(line_buffering=True, write_through=True)
    namespace: dict = {"__name__": "__student__"}
    exec(PRELUDE, namespace)
    before = _open_fds()
    result: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        os.write(result_w, _MARK.pack(b"S", time.monotonic()))
        value = None
        try:
            exec(compile(source, "<your cell>", "exec"), namespace)
            func = namespace[name]
            value = func(*args) if repeat is None else [func(*args) for _ in range(repeat)]
            result["value"] = plain.encode(value)
        except BaseException as exc:  # the student's error is a result, not a crash of ours
            exc.__traceback__ = None
            result["error"] = plain.encode_exception(exc)
        os.write(result_w, _MARK.pack(b"R", time.monotonic()))
        result["threads"] = _lingering_threads()
        kept = _returned_sockets(value)
        gc.collect()  # sockets only the garbage collector would close: their ResourceWarning comes now
        after = _open_fds()
        result["left_open"] = [f"fd {fd} -> {target}" for fd, target in sorted(after.items())
                               if fd not in before and fd not in kept and target.startswith("socket:")]
        result["unclosed"] = [str(w.message)[:200] for w in caught
                              if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    data = json.dumps(result).encode()
    if len(data) > RESULT_LIMIT:
        result["value"] = {"object": plain.type_name(value), "repr": "(too big to bring back)"}
        data = json.dumps(result).encode()
    data += b"\n"  # the end of the result: a child of the student's may hold this pipe open for long
    sys.stdout.flush()
    sys.stderr.flush()
    view = memoryview(data)
    while view:
        view = view[os.write(result_w, view):]
    os._exit(0)


# -- in the supervisor -------------------------------------------------------------------------


class _Output:
    """The student's printed bytes: the first and the last OUTPUT_KEPT of them, and how many in all."""

    def __init__(self):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_KEPT - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        del self.tail[:-OUTPUT_KEPT]

    def as_data(self) -> dict:
        return {"head": self.head.decode(errors="replace"), "tail": self.tail.decode(errors="replace"),
                "bytes": self.total}


class _Pipes:
    """Reads the output and result pipes together, so that neither can fill up and block the child."""

    def __init__(self, out_r: int, result_r: int):
        self.open = {out_r: "out", result_r: "result"}
        self.output = _Output()
        self.result = bytearray()
        self.marks: dict[str, float] = {}
        self._unread_marks = bytearray()

    def pump(self, until: float, stop=lambda: False) -> None:
        while self.open and not stop():
            left = until - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select(list(self.open), [], [], min(left, 0.05))
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    os.close(fd)
                    del self.open[fd]
                elif self.open[fd] == "out":
                    self.output.add(data)
                else:
                    self._result(data)

    def _result(self, data: bytes) -> None:
        if len(self.marks) == 2:
            self.result += data
            return
        self._unread_marks += data
        while len(self.marks) < 2 and len(self._unread_marks) >= _MARK.size:
            letter, moment = _MARK.unpack_from(self._unread_marks)
            del self._unread_marks[:_MARK.size]
            self.marks.setdefault({b"S": "started", b"R": "returned"}.get(letter, "garbled"), moment)
        if len(self.marks) == 2:
            self.result += self._unread_marks
            self._unread_marks.clear()

    def result_done(self) -> bool:
        """The whole result arrived (it ends with a newline), or the student's process closed the pipe."""
        return self.result.endswith(b"\n") or "result" not in self.open.values()

    def close(self) -> None:
        for fd in self.open:
            os.close(fd)
        self.open.clear()


def _descendants() -> list[int]:
    return processes.descendants(os.getpid())


def _command(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def _describe(pid: int) -> str:
    command = _command(pid)
    if command and command == _command(os.getpid()):
        shown = "a fork of your function's process"
    else:
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            name = "?"
        shown = " ".join(command)[:80] or name
    return f"{pid} ({shown})"


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_student(pid: int) -> None:
    """SIGKILL the student's process and its process group (the same number: it leads its session)."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_everything(pgid: int | None = None) -> None:
    """SIGKILL the student's process group and every descendant, until none is left (or the deadline)."""
    deadline = time.monotonic() + KILL_DEADLINE
    while time.monotonic() < deadline:
        if pgid:
            _kill_student(pgid)
        left = _descendants()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap()
        if not left:
            return
        time.sleep(0.01)


def _wait_child(pid: int, pipes: _Pipes, until: float) -> tuple[int, object] | None:
    """(status, rusage) of the student's process once it has ended, reading its pipes meanwhile."""
    while True:
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if found:
            return status, usage
        if time.monotonic() >= until:
            return None
        pipes.pump(min(until, time.monotonic() + 0.02))
        if not pipes.open:
            time.sleep(0.01)


def supervise(source: str, name: str, args: tuple, timeout: float, repeat: int | None = None) -> dict:
    out_r, out_w = os.pipe()
    result_r, result_w = os.pipe()
    forked = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(result_r)
            _student(source, name, args, repeat, out_w, result_w)
        finally:
            os._exit(70)
    os.close(out_w)
    os.close(result_w)
    pipes = _Pipes(out_r, result_r)
    report: dict = {"timed_out": False, "stuck_after_return": False}
    pipes.pump(forked + timeout, stop=lambda: "returned" in pipes.marks or pipes.result_done())
    started = pipes.marks.get("started", forked)
    if "returned" not in pipes.marks and not pipes.result_done():
        report["timed_out"] = True
    else:
        pipes.pump(time.monotonic() + AFTER_RETURN, stop=pipes.result_done)
        report["stuck_after_return"] = not pipes.result_done()
    report["seconds"] = pipes.marks.get("returned", time.monotonic()) - started
    if report["timed_out"] or report["stuck_after_return"]:
        _kill_student(pid)
    ended = _wait_child(pid, pipes, time.monotonic() + KILL_DEADLINE)
    if ended is None:
        _kill_student(pid)
        ended = _wait_child(pid, pipes, time.monotonic() + KILL_DEADLINE) or (0, None)
    status, usage = ended
    report["cpu_seconds"] = usage.ru_utime + usage.ru_stime if usage else 0.0
    if "returned" not in pipes.marks and not report["timed_out"]:
        report["ended"] = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                           else {"exit": os.WEXITSTATUS(status)})
    grace = time.monotonic() + CHILD_GRACE
    left = _descendants()  # each look reads /proc (processes.descendants): one every 20 ms at most, below
    while left and time.monotonic() < grace:
        pipes.pump(time.monotonic() + 0.02)
        _reap()
        left = _descendants()
    report["left_running"] = [_describe(p) for p in left]
    if left:
        _kill_everything(pid)
    _reap()
    pipes.pump(time.monotonic() + 1.0)  # every writer is gone: the pipes end now
    pipes.close()
    report["output"] = pipes.output.as_data()
    try:
        report["result"] = json.loads(pipes.result.decode()) if pipes.result else None
    except ValueError:
        report["result"] = None
        report["garbled"] = True
    return report


def _stop(signum, frame) -> None:
    """SIGTERM (the kernel stops us, or died: PR_SET_PDEATHSIG): take every descendant along."""
    _kill_everything()
    os._exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the notebook reaches us too; the kernel decides
    signal.signal(signal.SIGTERM, _stop)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    expected = int(os.environ.get("SLL_PARENT_PID", "0"))
    if expected and os.getppid() != expected:
        os._exit(1)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    job = pickle.loads(sys.stdin.buffer.read())  # from the kernel, which started us: trusted
    report = supervise(job["source"], job["name"], job["args"], job["timeout"], job.get("repeat"))
    sys.stdout.write(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
