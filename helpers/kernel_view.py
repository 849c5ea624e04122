"""The sockets a process holds, and what the kernel says about them: states and queues.

Sources, all read-only:

    /proc/<pid>/fd/N -> "socket:[inode]"     which descriptors are sockets
    /proc/net/unix, /proc/net/tcp{,6}, udp    every socket of the machine, by inode
    ss -H -n ...                              queues: for a listening socket Recv-Q = connections
                                              waiting in the accept queue, Send-Q = the backlog

    /proc/net/netstat, /proc/net/snmp        the kernel's event counters (net_counter)

Introduced in 01-socket-creation (descriptors) and 03-listen-and-backlog (queues).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = [
    "AcceptQueue", "TcpSocket", "accept_queue", "connection_state", "fd_flags", "fds", "net_counter",
    "retransmissions", "socket_inode", "ss", "tcp_sockets", "umask_of", "unix_sockets",
]

TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1", "05": "FIN-WAIT-2",
    "06": "TIME-WAIT", "07": "CLOSE", "08": "CLOSE-WAIT", "09": "LAST-ACK", "0A": "LISTEN", "0B": "CLOSING",
}


def fds(pid: int | None = None) -> dict[int, str]:
    """Descriptor -> what it refers to, as `ls -l /proc/<pid>/fd` shows it."""
    base = f"/proc/{pid or os.getpid()}/fd"
    table = {}
    for name in os.listdir(base):
        try:
            table[int(name)] = os.readlink(f"{base}/{name}")
        except OSError:
            pass
    return dict(sorted(table.items()))


_FLAG_NAMES = ("O_APPEND", "O_NONBLOCK", "O_CLOEXEC")


def fd_flags(pid: int, fd: int) -> list[str]:
    """The open flags of `fd` in process `pid`, e.g. ['O_RDWR', 'O_CLOEXEC'], from /proc/<pid>/fdinfo/<fd>.

    The kernel's own record of the descriptor: the access mode (a socket is O_RDWR, each end of a
    pipe only one way), O_CLOEXEC (closed on exec) and O_NONBLOCK (setblocking(False)).
    """
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
    access = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}[flags & os.O_ACCMODE]
    return [access, *(name for name in _FLAG_NAMES if flags & getattr(os, name))]


def umask_of(pid: int | None = None) -> int:
    """The umask of process `pid`, from the `Umask:` line of /proc/<pid>/status (Linux 4.7 and newer).

    A socket file's mode is 0777 with the umask of the binding process removed (unix(7)), so a lesson
    that shows that mode must read the umask rather than assume 022. Reading it here, unlike
    os.umask(), changes nothing. Introduced in 02-bind-and-unlink.
    """
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))


def socket_inode(pid: int, fd: int) -> int | None:
    """The inode number of the socket behind `fd` in process `pid`, or None if it is no socket."""
    match = re.fullmatch(r"socket:\[(\d+)\]", fds(pid).get(fd, ""))
    return int(match.group(1)) if match else None


def unix_sockets() -> dict[int, dict]:
    """inode -> {path, type, state} for every AF_UNIX socket (`@name` for abstract names)."""
    kinds = {"0001": "SOCK_STREAM", "0002": "SOCK_DGRAM", "0005": "SOCK_SEQPACKET"}
    states = {"01": "UNCONNECTED", "02": "CONNECTING", "03": "CONNECTED", "04": "DISCONNECTING"}
    table = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            flags, kind, state, inode = parts[3], parts[4], parts[5], int(parts[6])
            path = parts[7] if len(parts) > 7 else ""
            listening = int(flags, 16) & 0x10000  # __SO_ACCEPTCON
            table[inode] = {"path": path, "type": kinds.get(kind, kind),
                            "state": "LISTEN" if listening else states.get(state, state)}
    return table


@dataclass(frozen=True)
class TcpSocket:
    local: tuple[str, int]
    peer: tuple[str, int]
    state: str
    inode: int


def _hex_address(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        address = ".".join(str(b) for b in reversed(raw))
    else:
        words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
        address = str(ipaddress.IPv6Address(b"".join(words)))
    return address, int(port, 16)


def tcp_sockets(port: int | None = None, proto: str = "tcp") -> list[TcpSocket]:
    """TCP (or "udp") sockets of the machine, optionally only those with `port` at either end."""
    found = []
    for name in (proto, f"{proto}6"):
        try:
            with open(f"/proc/net/{name}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, peer = _hex_address(parts[1]), _hex_address(parts[2])
                    if port is None or port in (local[1], peer[1]):
                        found.append(TcpSocket(local, peer, TCP_STATES.get(parts[3], parts[3]), int(parts[9])))
        except FileNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class AcceptQueue:
    """A listening socket's accept queue as the kernel reports it."""

    queued: int  # connections completed and waiting for accept()
    backlog: int  # the limit listen() set (after the somaxconn cap)

    def __str__(self) -> str:
        return f"{self.queued} waiting in the accept queue (backlog {self.backlog})"


def ss(*args: str) -> list[list[str]]:
    """`ss -H -n ARGS`, one list of fields per socket: what `ss` itself shows, without the header."""
    if shutil.which("ss") is None:
        raise FileNotFoundError("`ss` (Debian package iproute2) is needed to read socket queues")
    out = subprocess.run(["ss", "-H", "-n", *args], capture_output=True, text=True, timeout=5, check=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def accept_queue(address) -> AcceptQueue | None:
    """The accept queue of the listening socket at `address` (a path, or (host, port)); None if none."""
    if isinstance(address, str | bytes):
        path = os.fsdecode(address).replace("\0", "@", 1)
        for row in ss("-x", "-l"):
            # u_str LISTEN <Recv-Q> <Send-Q> <path> <inode> * 0
            if len(row) >= 5 and row[4] == path:
                return AcceptQueue(int(row[2]), int(row[3]))
        return None
    host, port = address[0], address[1]
    for row in ss("-t", "-l", f"sport = :{port}"):
        # LISTEN <Recv-Q> <Send-Q> <host>:<port> <peer>
        local_host = row[3].rsplit(":", 1)[0].strip("[]")
        if local_host in (host, "*", "0.0.0.0", "::"):
            return AcceptQueue(int(row[1]), int(row[2]))
    return None


def connection_state(local: tuple[str, int], peer: tuple[str, int], proto: str = "tcp") -> str | None:
    """The state of the TCP connection `local` -> `peer` (e.g. 'TIME-WAIT'), None once the kernel forgot it.

    Name a connection by both ends: the listening socket and every connection it accepted share
    the same local address. Introduced in 06-close-semantics.
    """
    for sock in tcp_sockets(local[1], proto):
        if sock.local == tuple(local) and sock.peer == tuple(peer):
            return sock.state
    return None


def retransmissions(local: tuple[str, int]) -> int | None:
    """How many times TCP has resent the unanswered segment of the socket at `local`; None if no such socket.

    `ss -o` shows a socket's retransmit timer as `timer:(on,<time left>,<count>)`. For a connect
    that gets no answer (its SYN dropped at a full accept queue) the count goes 0, 1, 2, ... until
    the kernel gives up with ETIMEDOUT (tcp_syn_retries, or TCP_SYNCNT on the socket).
    Introduced in 03-listen-and-backlog.
    """
    rows = ss("-t", "-o", "state", "all", "src", f"{local[0]}:{local[1]}")
    if not rows:
        return None
    for field in rows[0]:
        match = re.fullmatch(r"timer:\(on,[^,]*,(\d+)\)", field)
        if match:
            return int(match.group(1))
    return 0


def net_counter(group: str, name: str) -> int:
    """A counter of the kernel's network statistics, e.g. ("TcpExt", "TCPAbortOnClose"), ("Udp", "NoPorts").

    The kernel counts events no socket call reports: a reset sent because unread bytes were thrown
    away, a datagram dropped for want of room, a datagram to a port nobody holds. `/proc/net/netstat`
    (TcpExt, IpExt) and `/proc/net/snmp` (Ip, Icmp, Tcp, Udp) hold them as pairs of lines, a header
    of names and a line of values, counted since boot for the whole network namespace: other traffic
    may add to a counter while we watch, so compare a rise, not an exact value.
    Introduced in 06-close-semantics.
    """
    for table in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(table) as f:
            lines = f.read().splitlines()
        for header, values in zip(lines[::2], lines[1::2], strict=True):
            names = header.split()
            if names[0] == f"{group}:" and name in names:
                return int(values.split()[names.index(name)])
    raise KeyError(f"no counter {group} {name} in /proc/net/netstat or /proc/net/snmp")
