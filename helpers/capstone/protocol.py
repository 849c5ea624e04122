"""The capstone's protocol, as the gauntlet speaks it: framed requests, upper-cased replies.

    a message:  | length: 4 bytes, big-endian | that many bytes (at most MAX_MESSAGE) |
    a request:  one message from the client; the reply: one message, the request upper-cased

This is the gauntlet's own copy, independent of the student's: the attacker must not share the
bugs of the program it attacks. Introduced in 07-datagrams (framing) and 09-capstone.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time

from helpers.observe import wait_until

__all__ = ["MAX_MESSAGE", "connect", "frame", "read_message", "reply_to", "unread_bytes", "wait_until_read"]

MAX_MESSAGE = 65536
HEADER = struct.Struct("!I")


def frame(message: bytes, length: int | None = None) -> bytes:
    """The bytes of one message on the wire; `length` announces another length (an attack)."""
    return HEADER.pack(len(message) if length is None else length) + message


def reply_to(request: bytes) -> bytes:
    return request.upper()


def connect(path: str, timeout: float) -> socket.socket:
    """A client socket connected to `path`, with `timeout` on every later call."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"the connection ended after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_message(sock: socket.socket, timeout: float) -> bytes | None:
    """The next message, or None at end of file between messages.

    Raises TimeoutError if it has not all come within `timeout`, EOFError if the connection ends
    inside it, ValueError if the length is over MAX_MESSAGE (not our protocol), ConnectionError on a reset.
    """
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    first = sock.recv(1)
    if not first:
        return None
    (length,) = HEADER.unpack(first + _recv_exactly(sock, HEADER.size - 1, deadline))
    if length > MAX_MESSAGE:
        raise ValueError(f"a length of {length} bytes, over the limit of {MAX_MESSAGE}")
    return _recv_exactly(sock, length, deadline)


def unread_bytes(sock: socket.socket) -> int:
    """Bytes we sent on `sock` that the peer has not read yet (SIOCOUTQ; on AF_UNIX, freed as the peer reads)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def wait_until_read(sock: socket.socket, deadline: float) -> bool:
    """Wait until the peer has read everything we sent on `sock`, or until `deadline` (time.monotonic())."""
    return bool(wait_until(lambda: unread_bytes(sock) == 0, max(0.0, deadline - time.monotonic())))
