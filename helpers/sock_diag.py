"""Ask the kernel about its sockets as `ss` does: one sock_diag request over netlink (sock_diag(7)).

    s = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG)
    send  nlmsghdr + inet_diag_req_v2 (TCP) or unix_diag_req (AF_UNIX): "every socket in these states"
    recv  nlmsghdr + inet_diag_msg (or unix_diag_msg and its attributes), one per socket, ..., NLMSG_DONE

`ss` is a front end to exactly this. Asking from our own process takes ~0.1 ms; starting `ss` takes
~3 ms of CPU, and the helpers ask many times a second (a live gauge of an accept queue, a wait for the
next SYN resend). The figures are the ones `ss` prints: for a listening socket Recv-Q (`recv_q`) is the
number of connections waiting in its accept queue and Send-Q (`send_q`) its backlog; `timer` and
`retransmits` are what `ss -o` shows as `timer:(on,<time left>,<retransmits>)`.

Where the kernel has no sock_diag for a family (its module, e.g. unix_diag, not loaded and not
loadable, as in some containers) every function here raises OSError, and `helpers.kernel_view` asks
`ss` instead. Used by `helpers.kernel_view` and the tests' listener audit.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["ALL_STATES", "LISTEN", "LIVE_STATES", "TIMER_RETRANSMIT", "InetSocket", "UnixSocket", "tcp", "unix"]

LISTEN = 10  # TCP_LISTEN in the kernel's numbering (include/net/tcp_states.h); AF_UNIX listeners use it too
ALL_STATES = 0xFFFFFFFF
# Every state but TIME_WAIT (6) and NEW_SYN_RECV (12, a handshake in progress): a busy machine holds tens
# of thousands of those, and a dump of them all takes ~0.4 s (measured: 42,000 after a burst of connections)
LIVE_STATES = ALL_STATES & ~(1 << 6) & ~(1 << 12)
TIMER_RETRANSMIT = 1  # inet_diag_msg.idiag_timer: 1 = retransmit ("on" in ss), 2 keepalive, 3 TIME_WAIT, 4 probe

_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20  # linux/netlink.h, linux/sock_diag.h
_NLM_F_REQUEST, _NLM_F_DUMP, _NLMSG_ERROR, _NLMSG_DONE = 0x1, 0x300, 2, 3
_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_INET_REQUEST = struct.Struct("=BBBxI48x")  # inet_diag_req_v2: family, protocol, extensions, states, sockid
_INET_MESSAGE = struct.Struct("=BBBB2H16s16s12xIIIII")  # inet_diag_msg, from the family byte to the inode
_UNIX_REQUEST = struct.Struct("=BBxxIIIII")  # unix_diag_req: family, protocol, states, inode, show, cookie
_UNIX_MESSAGE = struct.Struct("=BBBxI8x")  # unix_diag_msg: family, type, state, inode, cookie
_UDIAG_SHOW_NAME, _UDIAG_SHOW_VFS, _UDIAG_SHOW_RQLEN = 0x01, 0x02, 0x10
_UNIX_DIAG_NAME, _UNIX_DIAG_VFS, _UNIX_DIAG_RQLEN = 0, 1, 4  # the bound name; its file (inode, dev); (rqueue, wqueue)


class InetSocket(NamedTuple):
    """One TCP socket: state (10 = LISTEN), addresses, `ss`'s Recv-Q/Send-Q, its timer and inode."""

    state: int
    local: tuple[str, int]
    peer: tuple[str, int]
    timer: int
    retransmits: int
    recv_q: int
    send_q: int
    inode: int


class UnixSocket(NamedTuple):
    """One AF_UNIX socket: state, type (SOCK_STREAM...), its bound name as bytes (b"\\0..." abstract,
    b"" unbound), `ss`'s Recv-Q/Send-Q (for a listener: connections waiting, backlog), its inode, and
    the inode of the socket file bind() made (0: none). A file unlinked and bound anew gives two
    sockets of one name; only the file's inode tells which one a connect to the path reaches."""

    state: int
    type: int
    name: bytes
    recv_q: int
    send_q: int
    inode: int
    file_inode: int


def tcp(family: int, states: int = ALL_STATES) -> list[InetSocket]:
    """Every TCP socket of `family` (AF_INET or AF_INET6) whose state is in the bit mask `states`
    (1 << LISTEN: the listeners), in this network namespace."""
    found = []
    for message in _dump(_INET_REQUEST.pack(family, socket.IPPROTO_TCP, 0, states)):
        (_, state, timer, retransmits, sport, dport, src, dst,
         _, recv_q, send_q, _, inode) = _INET_MESSAGE.unpack_from(message)
        size = 4 if family == socket.AF_INET else 16  # the address words are in network byte order
        local = (socket.inet_ntop(family, src[:size]), socket.ntohs(sport))
        peer = (socket.inet_ntop(family, dst[:size]), socket.ntohs(dport))
        found.append(InetSocket(state, local, peer, timer, retransmits, recv_q, send_q, inode))
    return found


def unix(states: int = ALL_STATES) -> list[UnixSocket]:
    """Every AF_UNIX socket whose state is in `states`, with its name and queue lengths."""
    found = []
    show = _UDIAG_SHOW_NAME | _UDIAG_SHOW_VFS | _UDIAG_SHOW_RQLEN
    request = _UNIX_REQUEST.pack(socket.AF_UNIX, 0, states, 0, show, ALL_STATES, ALL_STATES)
    for message in _dump(request):
        _, kind, state, inode = _UNIX_MESSAGE.unpack_from(message)
        attributes = dict(_attributes(message[_UNIX_MESSAGE.size:]))
        name = bytes(attributes.get(_UNIX_DIAG_NAME, b""))
        if name[:1] != b"\0":  # a path is stored with its terminating NUL; an abstract name is taken as is
            name = name.split(b"\0", 1)[0]
        recv_q, send_q = struct.unpack_from("=II", attributes[_UNIX_DIAG_RQLEN]) \
            if _UNIX_DIAG_RQLEN in attributes else (0, 0)
        file_inode = struct.unpack_from("=I", attributes[_UNIX_DIAG_VFS])[0] if _UNIX_DIAG_VFS in attributes else 0
        found.append(UnixSocket(state, kind, name, recv_q, send_q, inode, file_inode))
    return found


def _dump(request: bytes) -> Iterator[memoryview]:
    """Send one dump request; yield the body of each answer, one per socket. OSError: no sock_diag."""
    header = _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY,
                                _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
        diag.sendto(header + request, (0, 0))
        while True:
            data = memoryview(diag.recv(1 << 16))
            offset = 0
            while offset < len(data):
                length, kind, *_ = _NLMSG_HEADER.unpack_from(data, offset)
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:  # e.g. ENOENT: the kernel has no sock_diag for this family
                    code = -struct.unpack_from("=i", data, offset + _NLMSG_HEADER.size)[0]
                    raise OSError(code, f"sock_diag: {os.strerror(code)}")
                yield data[offset + _NLMSG_HEADER.size:offset + length]
                offset += (length + 3) & ~3


def _attributes(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """The netlink attributes (struct rtattr: length, type, value) that follow a message."""
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind, data[offset + 4:offset + length]
        offset += (length + 3) & ~3
