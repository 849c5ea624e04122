"""Reference solutions for 01-socket-creation. Try the exercises yourself first.

Each function is self-contained: the checker runs its source in a fresh process where errno, os,
socket (and a few more modules) are already imported.
"""

import os
import socket


def socket_fds(pid):
    """The descriptor numbers (sorted ints) of process `pid` that refer to sockets."""
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed between listdir and readlink
            continue
        if target.startswith("socket:"):
            found.append(int(name))
    return sorted(found)


def next_fd(pid):
    """The number the next socket() in process `pid` will get: the lowest one not in use."""
    in_use = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    fd = 0
    while fd in in_use:
        fd += 1
    return fd


def default_protocol(family, type):
    """The protocol number the kernel picks for socket(family, type, 0), or None if it refuses."""
    try:
        with socket.socket(family, type, 0) as s:
            return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    except OSError:
        return None
