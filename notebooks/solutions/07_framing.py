"""Reference solutions for the framing exercise of 07-datagrams.ipynb (same names as the stubs).

A message on a stream socket: a 4-byte big-endian length, then that many bytes. The three functions
are copied as they are into the capstone's server.py and client.py (09-capstone.ipynb).
"""

import socket  # noqa: F401 (the functions take sockets; the checker's process imports it too)
import struct


def recv_exactly(sock, n):
    """Exactly `n` bytes from `sock`; EOFError if the peer closes before they have all come."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))  # never more than we still need: the next message stays queued
        if not chunk:
            raise EOFError(f"the peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def send_message(sock, message):
    """Send `message` (bytes) as one frame: its length (4 bytes, big-endian), then the bytes."""
    sock.sendall(struct.pack("!I", len(message)) + message)


def recv_message(sock, limit=65536):
    """The next message from `sock`; None if the peer closed between two messages.

    EOFError if it closes inside one; ValueError, before reading the body, if its length is over `limit`.
    """
    first = sock.recv(1)
    if not first:
        return None  # end of file where a message would begin: the peer is done
    (length,) = struct.unpack("!I", first + recv_exactly(sock, 3))
    if length > limit:
        raise ValueError(f"a message of {length} bytes announced; the limit is {limit}")
    return recv_exactly(sock, length)
