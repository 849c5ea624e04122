"""Messages between the notebook kernel and a puppet: pickled values, each behind a 4-byte length.

The channel is a pair of anonymous pipes, private to the two processes: no socket anyone else could
connect to. Values are plain data (numbers, bytes, tuples, exceptions); a socket inside a result is
sent as a `SocketRef` and becomes a remote socket on the kernel's side.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass

__all__ = ["SocketRef", "Reader", "pack", "write_message"]

_HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class SocketRef:
    """A socket that lives in the puppet, named by its handle there and described for display."""

    handle: int
    fd: int
    family: int
    type: int


def pack(message) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


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
        self._buffer += data
        messages = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if len(self._buffer) < _HEADER.size + size:
                break
            body = bytes(self._buffer[_HEADER.size:_HEADER.size + size])
            del self._buffer[:_HEADER.size + size]
            messages.append(pickle.loads(body))
        return messages
