"""The pipes between the notebook kernel and a puppet: the messages, their framing, and both ends.

    kernel (notebook)                                          puppet process
    -----------------                                          --------------
    Channel.send(...)  -- cmd pipe ---  Call  ------------->  main thread: runs it, may block in it
    Channel.send(...)  -- side pipe --  ToThread, StartThread ->  router thread -> worker thread(s)
    reader thread     <-- reply pipe -  Hello, then one Reply per Call  --  whichever thread ran it
    reader thread     <-- event pipe -  Event  ------------------------  a signal handler

Four anonymous pipes, private to the two processes: no socket anyone else could connect to. Each
message is a pickled named tuple behind a 4-byte length. On the kernel's side one thread per puppet,
the reader, is the only one that ever reads the reply and event pipes: it turns each Reply into the
result of a `concurrent.futures.Future`, and keeps the events in order. Every other thread only
writes, and waits on futures. A socket inside a result travels as a `SocketRef`; the reader hands it
to the puppet's `convert`, once, so the kernel sees one remote socket object per result.
Used by `helpers.puppet` (the kernel's end) and `helpers.puppet_child` (the puppet's end).
"""

from __future__ import annotations

import _pickle  # the C pickler that `pickle` re-exports: `import pickle` also imports `re`, for its __all__
import os
import select
import struct
import threading
import time
from collections import namedtuple
from collections.abc import Callable

# Every puppet imports this module as it starts, over a thousand in a test run: with `typing` (for
# NamedTuple and TYPE_CHECKING) and `pickle` (both import `re`), a puppet's imports took ~40 ms of CPU
# instead of ~30 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any

__all__ = [
    "Call", "Channel", "Event", "Hello", "Launch", "Reader", "Reply", "SocketRef", "StartThread", "ToThread",
    "messages", "pack", "settled", "unpack", "write_message",
]


def _named_tuple(cls: type) -> type:
    """The class as a named tuple of its annotated fields (with their defaults), as `typing.NamedTuple`
    makes it, without importing `typing`; its methods and docstring are kept."""
    fields = list(cls.__annotations__)
    defaults = [cls.__dict__[name] for name in fields if name in cls.__dict__]
    if any(name not in cls.__dict__ for name in fields[len(fields) - len(defaults):]):
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
    base = namedtuple(cls.__name__, fields, defaults=defaults, module=cls.__module__)
    own = {name: value for name, value in vars(cls).items()
           if name not in fields and name not in ("__dict__", "__weakref__", "__annotations__")}
    return type(cls.__name__, (base,), {**own, "__slots__": ()})


@_named_tuple
class Launch:
    """The puppet's command line: its ends of the four pipes, and the user to become ("" = stay)."""

    cmd_fd: int
    reply_fd: int
    side_fd: int
    events_fd: int
    user: str = ""

    def argv(self) -> list[str]:
        return [*map(str, self[:4]), self.user]

    @classmethod
    def from_argv(cls, argv: list[str]) -> Launch:
        return cls(*map(int, argv[:4]), *argv[4:5])


@_named_tuple
class Hello:
    """The puppet's first message: who it is, and which of its descriptors are its own plumbing."""

    tid: int
    pid: int
    uid: int
    gid: int
    own_fds: tuple[int, int]  # (command pipe, reply pipe): sleeping on them is never a call of ours


@_named_tuple
class Call:
    """Run `method(*args, **kwargs)` on the object with this handle (0 = the process itself)."""

    id: int
    handle: int
    method: str
    args: tuple
    kwargs: dict


@_named_tuple
class ToThread:
    """Side pipe: a call for worker thread number `worker` (0, 1, ... in the order they started)."""

    worker: int
    call: Call


@_named_tuple
class StartThread:
    """Side pipe: the router starts one more worker thread and replies with its kernel thread id."""

    id: int


@_named_tuple
class Reply:
    """The outcome of call `id`: ok and its value, or not ok and the exception it raised."""

    id: int
    ok: bool
    value: Any


@_named_tuple
class Event:
    """Something that happened in the puppet outside any call: ("signal", signum, action)."""

    kind: str
    signum: int
    action: str


@_named_tuple
class SocketRef:
    """A socket that lives in the puppet, named by its handle there and described for display."""

    handle: int
    fd: int
    family: int
    type: int


_HEADER = struct.Struct("!I")
_HIGHEST_PROTOCOL = -1  # pickle.HIGHEST_PROTOCOL, which `_pickle` does not define
# On the wire a message is a plain tuple (kind, *fields): pickle makes and reads a plain tuple about
# ten times faster than a named one, and a call's round trip is a few of them.
_KINDS: tuple[type, ...] = (Call, Reply, Event, Hello, ToThread, StartThread)
_KIND_OF = {kind: number for number, kind in enumerate(_KINDS)}


def pack(message) -> bytes:
    """One message as bytes: its length, then the pickled (kind, *fields)."""
    body = _pickle.dumps((_KIND_OF[type(message)], *message), protocol=_HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def unpack(body: bytes):
    kind, *fields = _pickle.loads(body)
    return _KINDS[kind]._make(fields)


def write_message(fd: int, message) -> None:
    """Write one whole message (loops over partial writes of large messages)."""
    data = memoryview(pack(message))
    while data:
        data = data[os.write(fd, data):]


class Reader:
    """Splits a byte stream into messages. `feed(bytes)` returns the complete ones."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list:
        if not self._buffer and len(data) >= _HEADER.size and _HEADER.unpack_from(data)[0] == len(data) - _HEADER.size:
            return [unpack(data[_HEADER.size:])]  # the usual case: one read, one whole message
        self._buffer += data
        messages = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if len(self._buffer) < _HEADER.size + size:
                break
            body = bytes(self._buffer[_HEADER.size:_HEADER.size + size])
            del self._buffer[:_HEADER.size + size]
            messages.append(unpack(body))
        return messages


def messages(fd: int):
    """Every message arriving on `fd`, until the writer closes it (the puppet's side: one reader per pipe)."""
    reader = Reader()
    while data := os.read(fd, 1 << 16):
        yield from reader.feed(data)


def settled(future: Future, timeout: float) -> bool:
    """Wait up to `timeout` for a call's future; True once it holds a value or an error (without raising it)."""
    try:
        future.exception(timeout)
    except TimeoutError:  # the wait's own timeout: a call that raised TimeoutError is settled
        return False
    return True


class Channel:
    """The kernel's end of one puppet's pipes.

    `send()` and `start_thread()` write a message and return the Future of its reply; any thread
    may call them. The reader thread `read-<name>` alone reads: it resolves futures (values pass
    through `convert` once), appends events, and at end of file (the puppet is gone) fails the
    calls still pending with `exit_error()` and closes its descriptors. Each call's Future gets
    `ended_at` (time.monotonic()) when its reply or the end of file comes, before it is resolved.
    """

    def __init__(self, name: str, cmd_w: int, side_w: int, reply_r: int, events_r: int,
                 convert: Callable[[Any], Any], exit_error: Callable[[], BaseException]):
        self._cmd_w, self._side_w, self._reply_r, self._events_r = cmd_w, side_w, reply_r, events_r
        from concurrent.futures import Future  # here: the puppet's side starts without it (and logging)

        self._convert, self._exit_error, self._new_future = convert, exit_error, Future
        self._lock = threading.Lock()  # guards the futures table, the ids and `closed`
        self._write_locks = {cmd_w: threading.Lock(), side_w: threading.Lock()}  # large messages: many writes
        self._futures: dict[int, Future] = {}
        self._next_id = 1
        self.closed = False  # set by the reader at end of file: no reply will come any more
        self.hello: Future = Future()
        self.events: list[Event] = []
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    # -- any thread: sending ----------------------------------------------------------------------
    def send(self, handle: int, method: str, args: tuple, kwargs: dict, worker: int | None = None) -> Future:
        """Send one call to the main thread (worker None) or to a worker thread; its reply resolves the Future."""
        call_id, future = self._register()
        call = Call(call_id, handle, method, args, kwargs)
        if worker is None:
            self._write(self._cmd_w, call_id, call)
        else:
            self._write(self._side_w, call_id, ToThread(worker, call))
        return future

    def start_thread(self) -> Future:
        """Ask the puppet for one more worker thread; the Future's value is its thread id."""
        call_id, future = self._register()
        self._write(self._side_w, call_id, StartThread(call_id))
        return future

    def _register(self) -> tuple[int, Future]:
        with self._lock:
            if self.closed:
                raise self._exit_error()
            call_id, self._next_id = self._next_id, self._next_id + 1
            self._futures[call_id] = future = self._new_future()
        return call_id, future

    def _write(self, fd: int, call_id: int, message) -> None:
        try:
            with self._write_locks[fd]:
                write_message(fd, message)
        except (OSError, KeyError):  # the puppet is gone (EPIPE), or we closed the pipe (stop)
            with self._lock:
                self._futures.pop(call_id, None)
            raise self._exit_error() from None

    def close(self) -> None:
        """Close the command pipes: the puppet exits when it reads their end. The reader then ends too."""
        for fd in (self._cmd_w, self._side_w):
            if self._write_locks.pop(fd, None):  # a later send() finds no lock: the puppet is stopped
                os.close(fd)

    def join(self, timeout: float) -> None:
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)

    # -- the reader thread ---------------------------------------------------------------------
    def _read(self) -> None:
        poller = select.poll()
        readers = {self._events_r: Reader(), self._reply_r: Reader()}
        for fd in readers:
            poller.register(fd, select.POLLIN)
        try:
            while readers:
                ready = poller.poll()
                if len(ready) > 1:  # events first: a handler writes its event before the reply of the call it ended
                    ready.sort(key=lambda pair: pair[0] != self._events_r)
                for fd, _ in ready:
                    data = os.read(fd, 1 << 16)
                    if not data:
                        poller.unregister(fd)
                        del readers[fd]
                        continue
                    for message in readers[fd].feed(data):
                        self._handle(message)
        finally:
            self._finish()

    def _handle(self, message) -> None:
        if type(message) is Reply:
            with self._lock:
                future = self._futures.pop(message.id, None)
            if future is None:
                return
            future.ended_at = time.monotonic()  # stamped before it resolves: whoever it wakes finds the stamp
            if not message.ok:
                future.set_exception(message.value)
                return
            try:
                value = self._convert(message.value)
            except Exception as error:  # never lose a reply: the caller sees what went wrong
                future.set_exception(error)
            else:
                future.set_result(value)
        elif type(message) is Event:
            self.events.append(message)
        elif type(message) is Hello:
            self.hello.set_result(message)

    def _finish(self) -> None:
        with self._lock:
            self.closed = True
            orphans = list(self._futures.values())
            self._futures.clear()
        for fd in (self._reply_r, self._events_r):
            os.close(fd)
        if orphans or not self.hello.done():
            error = self._exit_error()
            for future in orphans:
                future.ended_at = time.monotonic()
                future.set_exception(error)
            if not self.hello.done():
                self.hello.set_exception(error)
