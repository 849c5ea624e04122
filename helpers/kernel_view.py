"""The sockets a process holds, and what the kernel says about them: states and queues.

Sources, all read-only:

    /proc/<pid>/fd/N -> "socket:[inode]"     which descriptors are sockets
    /proc/net/unix, /proc/net/tcp{,6}, udp    every socket of the machine, by inode
    sock_diag over netlink (helpers.sock_diag) queues and timers, what `ss` asks the kernel: for a
                                              listening socket Recv-Q = connections waiting in the
                                              accept queue, Send-Q = the backlog (`ss` where the
                                              kernel has no sock_diag)
    /proc/net/netstat, /proc/net/snmp         the kernel's event counters (TcpExt ListenOverflows, ...)
    /proc/sys/net/...                         the socket settings (sysctls) of this network namespace

Introduced in 01-socket-creation (descriptors) and 03-listen-and-backlog (queues).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

from helpers import sock_diag

__all__ = [
    "AcceptQueue", "SynSchedule", "TcpSocket", "accept_queue", "connection_state", "fd_flags", "fds", "net_counter",
    "net_counters", "predict_syn_schedule", "retransmissions", "socket_inode", "ss", "syn_schedule", "sysctl",
    "tcp_sockets", "umask_of", "unix_sockets", "watch_resends",
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
    """The accept queue of the listening socket at `address` (a path, or (host, port)); None if none.

    A bound socket that does not listen (yet) has no accept queue: sock_diag is asked for listeners only.
    Where a path's file was unlinked and bound anew while the old socket still listens (a cell run
    twice), both carry the name: the one bound to the file now at the path is the one clients reach.
    """
    try:
        if isinstance(address, str | bytes):
            name = os.fsencode(address)
            named = [s for s in sock_diag.unix(1 << sock_diag.LISTEN) if s.name == name]
            at_path = _file_inode(name)  # once: the sort below compares every listener with the same file
            found = [(s.recv_q, s.send_q) for s in sorted(named, key=lambda s: s.file_inode != at_path)]
        else:
            host, port = address[0], address[1]
            found = [(s.recv_q, s.send_q) for family in _families(host)
                     for s in sock_diag.tcp(family, 1 << sock_diag.LISTEN)
                     if s.local[1] == port and s.local[0] in (host, "0.0.0.0", "::")]
    except OSError:  # no sock_diag here (its module not loaded): `ss` reads /proc/net instead
        return _accept_queue_from_ss(address)
    return AcceptQueue(*found[0]) if found else None


def _file_inode(path: bytes) -> int | None:
    """The inode of the file at `path` (None: no file, or an abstract name, which has none)."""
    try:
        return os.stat(path).st_ino if path[:1] != b"\0" else None
    except (OSError, ValueError):
        return None


def _families(host: str) -> tuple[int, ...]:
    """The address families whose listeners may take connections to `host` (an IPv6 one on :: takes IPv4 too)."""
    return (socket.AF_INET6,) if ":" in host else (socket.AF_INET, socket.AF_INET6)


def _accept_queue_from_ss(address) -> AcceptQueue | None:
    if isinstance(address, str | bytes):
        path = os.fsdecode(address).replace("\0", "@", 1)
        for row in ss("-x", "-l"):
            # u_str LISTEN <Recv-Q> <Send-Q> <path> <inode> * 0; `-l` lists bound sockets that do not
            # listen (yet) too, as UNCONN 0 0: a bind() without listen() has no accept queue
            if len(row) >= 5 and row[1] == "LISTEN" and row[4] == path:
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
    """How many times TCP has resent the unanswered segment of the socket at `local`; None if no such socket
    (or one in TIME_WAIT, which resends nothing: sock_diag is not asked for those, a busy machine has many).

    `ss -o` shows a socket's retransmit timer as `timer:(on,<time left>,<count>)`. For a connect
    that gets no answer (its SYN dropped at a full accept queue) the count goes 0, 1, 2, ... until
    the kernel gives up with ETIMEDOUT (tcp_syn_retries, or TCP_SYNCNT on the socket).
    Introduced in 03-listen-and-backlog.
    """
    host, port = local[0], local[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        found = [s for s in sock_diag.tcp(family, sock_diag.LIVE_STATES) if s.local == (host, port)]
    except OSError:  # no sock_diag here: `ss -o` shows the same timer
        return _retransmissions_from_ss(local)
    if not found:
        return None
    return found[0].retransmits if found[0].timer == sock_diag.TIMER_RETRANSMIT else 0


def _retransmissions_from_ss(local: tuple[str, int]) -> int | None:
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
    group_counters = net_counters().get(group, {})
    if name not in group_counters:
        raise KeyError(f"no counter {group} {name} in /proc/net/netstat or /proc/net/snmp")
    return group_counters[name]


def sysctl(name: str) -> int | None:
    """An integer kernel setting such as "net.core.somaxconn"; None if this kernel has no such setting.

    Socket settings belong to the network namespace: a container reads its own, which start at
    the kernel's defaults, not the host's tuning. Introduced in 03-listen-and-backlog.
    """
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def net_counters() -> dict[str, dict[str, int]]:
    """The kernel's network event counters, by group: net_counters()["TcpExt"]["ListenOverflows"].

    /proc/net/netstat (TcpExt, IpExt, ...) and /proc/net/snmp (Ip, Tcp, Udp, ...) hold pairs of
    lines, names then values. The counts are per network namespace and only grow: every program of
    the namespace adds to them, so compare two readings and expect *at least* your own events.
    Introduced in 03-listen-and-backlog.
    """
    groups: dict[str, dict[str, int]] = {}
    for source in ("/proc/net/snmp", "/proc/net/netstat"):
        with open(source) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2], strict=True):
            group, *keys = names.split()
            groups[group.rstrip(":")] = dict(zip(keys, map(int, values.split()[1:]), strict=True))
    return groups


_FIRST_WAIT = 1  # s: TCP_TIMEOUT_INIT, the first retransmission timeout of a SYN
_LONGEST_WAIT = 120  # s: TCP_RTO_MAX, no wait between two resends is longer


@dataclass(frozen=True)
class SynSchedule:
    """When the kernel resends an unanswered SYN, and when connect() gives up with ETIMEDOUT."""

    syn_retries: int  # tcp_syn_retries, or TCP_SYNCNT of the socket
    linear_timeouts: int | None  # tcp_syn_linear_timeouts; None: the kernel has none (before 6.5)
    budget: int  # s: what the doubling schedule takes for syn_retries resends
    resends: tuple[int, ...]  # s after connect()
    gives_up: int  # s after connect(): ETIMEDOUT

    def __str__(self) -> str:
        linear = "absent" if self.linear_timeouts is None else self.linear_timeouts
        return (f"tcp_syn_retries (or TCP_SYNCNT) = {self.syn_retries}, tcp_syn_linear_timeouts = {linear}\n"
                f"predicted: resends at {list(self.resends)} s, ETIMEDOUT at {self.gives_up} s "
                f"(time budget {self.budget} s)")

    def next_resend(self, after: float) -> int:
        """The first predicted resend later than `after` seconds (or the give-up time)."""
        return next((t for t in self.resends if t > after), self.gives_up)

    def matches(self, seen: list[float], ended: float | None = None, late: float = 1.0) -> bool:
        """Whether resends seen at `seen` s (and a connect() that ended at `ended` s) fit the prediction.

        Only the resends seen are compared, unless `ended` is given: then all of them, and the end.
        `late` forgives the delay of watching from user space (the timer is polled) on a loaded machine.
        """
        predicted, times = list(self.resends[:len(seen)]), list(seen)
        if ended is not None:
            predicted, times = [*self.resends, self.gives_up], [*seen, ended]
        return len(times) == len(predicted) and all(p - 0.2 <= t <= p + late for p, t in zip(predicted, times, strict=True))


def syn_schedule(syn_retries: int | None = None) -> SynSchedule:
    """The SYN resend schedule this kernel's settings predict (`syn_retries`: a socket's TCP_SYNCNT).

    The rule of net/ipv4/tcp_timer.c, for a SYN nobody answers: the first resend comes 1 s after
    connect(), and the wait doubles after each resend (capped at 120 s). Since Linux 6.5,
    `net.ipv4.tcp_syn_linear_timeouts` (default 4) keeps it at 1 s for that many resends first.
    connect() fails with ETIMEDOUT at the first resend due after the time budget, what the doubling
    schedule takes for `tcp_syn_retries` resends (2**(n+1) - 1 s: 127 s for 6), or once
    tcp_syn_retries + tcp_syn_linear_timeouts resends went out. Introduced in 03-listen-and-backlog.
    """
    retries = sysctl("net.ipv4.tcp_syn_retries") if syn_retries is None else syn_retries
    return predict_syn_schedule(retries, sysctl("net.ipv4.tcp_syn_linear_timeouts"))


def predict_syn_schedule(syn_retries: int, linear_timeouts: int | None) -> SynSchedule:
    """The schedule for given settings (`linear_timeouts` None: a kernel before 6.5); see syn_schedule."""
    doublings = (_LONGEST_WAIT // _FIRST_WAIT).bit_length() - 1  # ilog2: the waits double 6 times, then stay
    budget = (2 ** (min(syn_retries, doublings) + 1) - 1) * _FIRST_WAIT
    budget += max(0, syn_retries - doublings) * _LONGEST_WAIT
    resends, now, wait = [], 0, _FIRST_WAIT
    while True:
        now += wait
        if len(resends) >= syn_retries + (linear_timeouts or 0) or (resends and now >= budget):
            return SynSchedule(syn_retries, linear_timeouts, budget, tuple(resends), now)
        resends.append(now)
        if len(resends) > (linear_timeouts or 0):
            wait = min(2 * wait, _LONGEST_WAIT)


def watch_resends(local: tuple[str, int], started: float, stop, timeout: float) -> list[float]:
    """When the SYN of the connecting socket at `local` was resent: seconds after `started`.

    Samples the retransmit count (see retransmissions) every 10 ms until `stop(times)` is true or
    `timeout` seconds have passed. Introduced in 03-listen-and-backlog.
    """
    times: list[float] = []
    deadline = time.monotonic() + timeout
    while not stop(times) and time.monotonic() < deadline:
        count = retransmissions(local) or 0
        now = round(time.monotonic() - started, 1)
        times += [now] * (count - len(times))
        time.sleep(0.01)
    return times
