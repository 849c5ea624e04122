"""The floor under a puppet call: what one round trip costs with a reader thread, before any puppet work.

    .venv/bin/python bench/floor.py

A puppet call crosses three threads: the notebook's thread writes the call, the puppet runs it and
writes the reply, and the puppet's reader thread (the only one that reads the reply pipe) wakes the
notebook's thread. A bare pipe round trip crosses two. Each row is a round trip of 32 bytes to an
echo child (or of one call to a puppet), and they run interleaved, in blocks of 50, so that every row
sees the same load (the machine's load moves the bare pipe from ~5 to ~15 us):

- bare pipe: the notebook's thread writes and reads the echo itself (bench/run.py's floor);
- reader + Future / Lock / doorbell: a reader thread reads the echo (poll on two pipes, as the puppet's
  reader does) and wakes the writer through a concurrent.futures.Future (what helpers.wire does), a
  released threading.Lock, or an eventfd written with the GIL let go (a design measured, not used:
  it saves ~20% of a call at the price of a future of our own);
- minimal puppet + Future: the same as "reader + Future", with a puppet reduced to the work it must
  do (unpickle a call, find the socket, call its method, pickle the reply) and no helpers in the
  notebook's process: the floor of the design the puppets use;
- puppet call: `sock.gettimeout()` on a real puppet, as bench/run.py times it.

Prints one table: median and ratio to the bare pipe. A benchmark informs: always exits 0.
"""

from __future__ import annotations

import os
import pickle
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

from helpers import Puppet

BLOCKS = 40
PER_BLOCK = 50
MESSAGE = b"x" * 32
_ECHO = "import os\nwhile data := os.read(0, 65536):\n    os.write(1, data)\n"
_MINIMAL_PUPPET = """
import os, pickle, socket
table = {1: socket.socket(socket.AF_UNIX)}
while data := os.read(0, 65536):
    kind, (call_id, handle, method, args, kwargs) = pickle.loads(data[4:])
    body = pickle.dumps((1, (call_id, True, getattr(table[handle], method)(*args, **kwargs))), 5)
    os.write(1, len(body).to_bytes(4, "big") + body)
"""
_CALL = pickle.dumps((0, (1, 1, "gettimeout", (), {})), 5)
_CALL = len(_CALL).to_bytes(4, "big") + _CALL


def _child(source: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-S", "-c", source], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def bare_pipe(children: list) -> callable:
    child = _child(_ECHO)
    children.append(child)
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()

    def round_trip():
        os.write(to_child, MESSAGE)
        os.read(from_child, 65536)

    return round_trip


class _Doorbell:
    """An eventfd the reader writes (os.eventfd_write lets the GIL go first), for one waiter."""

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)
        self.value = None

    def wait(self):
        while self.value is None:
            self._poller.poll(5000)
            try:
                os.eventfd_read(self.fd)
            except BlockingIOError:
                pass
        value, self.value = self.value, None
        return value

    def set_result(self, value):
        self.value = value
        os.eventfd_write(self.fd, 1)


def through_reader(source: str, message: bytes, wake: str, children: list) -> callable:
    """Round trips whose answer a reader thread reads and hands over by `wake`."""
    child = _child(source)
    children.append(child)
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    quiet_r, quiet_w = os.pipe()  # the puppet's event pipe: polled, never written
    children.append((quiet_r, quiet_w))
    waiting: list = []
    door = _Doorbell() if wake == "doorbell" else None

    def read():
        poller = select.poll()
        poller.register(quiet_r, select.POLLIN)
        poller.register(from_child, select.POLLIN)
        while True:
            poller.poll()
            data = os.read(from_child, 65536)
            if not data:
                return
            if source is _MINIMAL_PUPPET:
                data = pickle.loads(data[4:])
            handle = waiting.pop()
            if wake == "lock":
                handle[1] = data
                handle[0].release()
            else:
                handle.set_result(data)

    threading.Thread(target=read, daemon=True).start()

    def round_trip():
        if wake == "future":
            future = Future()
            waiting.append(future)
            os.write(to_child, message)
            return future.result(5)
        if wake == "lock":
            handle = [threading.Lock(), None]
            handle[0].acquire()
            waiting.append(handle)
            os.write(to_child, message)
            handle[0].acquire(True, 5)
            return handle[1]
        waiting.append(door)
        os.write(to_child, message)
        return door.wait()

    return round_trip


def main() -> int:
    children: list = []
    with Puppet("bench") as puppet:
        sock = puppet.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        rows = {
            "bare pipe": bare_pipe(children),
            "reader + Future": through_reader(_ECHO, MESSAGE, "future", children),
            "reader + Lock": through_reader(_ECHO, MESSAGE, "lock", children),
            "reader + doorbell": through_reader(_ECHO, MESSAGE, "doorbell", children),
            "minimal puppet + Future": through_reader(_MINIMAL_PUPPET, _CALL, "future", children),
            "puppet call gettimeout()": sock.gettimeout,
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(BLOCKS):
            for name, round_trip in rows.items():
                for n in range(PER_BLOCK + 5):
                    start = time.perf_counter()
                    round_trip()
                    if n >= 5:  # the first of a block pays for the switch from the other rows
                        times[name].append(time.perf_counter() - start)
    for child in children:
        if isinstance(child, tuple):
            for fd in child:
                os.close(fd)
        else:
            child.stdin.close()
            child.wait(5)
            child.stdout.close()
    pipe = statistics.median(times["bare pipe"])
    print(f"{'round trip':<28} {'median us':>10} {'/ bare pipe':>12}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1e6:>10.1f} {median / pipe:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
