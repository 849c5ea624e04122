"""helpers.kernel_view's queues and timers against real sockets: accept_queue (only a listening socket has an
accept queue) and retransmissions, read from sock_diag and, as where the kernel lacks it, from `ss`."""

import os
import re
import socket

import pytest

from helpers import sock_diag, wait_until, workspace
from helpers.kernel_view import AcceptQueue, accept_queue, retransmissions, ss


def test_a_bound_unix_socket_has_an_accept_queue_only_once_it_listens():
    """`ss -l` lists a bound socket that does not listen yet too (UNCONN 0 0). Read as a queue, it made
    helpers.serving.Server report "listening" between bind() and listen(), and its first client got
    ECONNREFUSED (once in ~160 starts on a loaded machine)."""
    path = workspace().path("bound-only.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            assert accept_queue(path) is None
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client, pytest.raises(ConnectionRefusedError):
                client.connect(path)
            server.listen(3)
            assert accept_queue(path) == AcceptQueue(queued=0, backlog=3)
    finally:
        os.unlink(path)


def test_the_accept_queue_of_every_kind_of_listener_counts_its_waiting_connections(with_and_without_sock_diag):
    """A path, an abstract name, TCP on 127.0.0.1 and on ::1 (where the machine has IPv6): one client
    connected and not yet accepted, and the backlog listen() asked for."""
    path = workspace().path("queue.sock")
    listeners = []
    try:
        for family, address, backlog in ((socket.AF_UNIX, path, 3), (socket.AF_UNIX, "\0sll-queue-test", 4),
                                         (socket.AF_INET, ("127.0.0.1", 0), 5), (socket.AF_INET6, ("::1", 0), 6)):
            server = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(server)
            try:
                server.bind(address)
            except OSError:  # no IPv6 on this machine
                continue
            server.listen(backlog)
            name = server.getsockname()
            assert accept_queue(name) == AcceptQueue(queued=0, backlog=backlog), name
            client = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(client)
            client.connect(name)
            assert accept_queue(name) == AcceptQueue(queued=1, backlog=backlog), name
    finally:
        for sock in listeners:
            sock.close()
        os.unlink(path)


def test_retransmissions_count_the_resends_of_a_syn_that_a_full_queue_drops(with_and_without_sock_diag):
    """listen(0) holds one connection; the next client's SYN is dropped and resent after ~1 s. The count
    comes from the socket's retransmit timer (`ss -o`: timer:(on,...,1)); `ss` itself must agree."""
    with socket.socket() as server, socket.socket() as first, socket.socket() as second:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        first.connect(server.getsockname())
        second.setblocking(False)
        second.bind(("127.0.0.1", 0))
        local = second.getsockname()
        with pytest.raises(BlockingIOError):
            second.connect(server.getsockname())
        assert retransmissions(local) == 0
        assert wait_until(lambda: retransmissions(local), timeout=5) >= 1
        rows = ss("-t", "-o", "state", "syn-sent", "src", f"{local[0]}:{local[1]}")
        assert len(rows) == 1 and re.search(r"timer:\(on,[^,]*,[1-9]\d*\)", " ".join(rows[0])), rows
    assert retransmissions(local) is None


def test_of_two_listeners_at_one_path_the_queue_is_the_one_bound_to_the_file_there_now():
    """A server's file unlinked and its path bound anew while the old socket still listens (a cell run
    twice does it): both carry the name, as `ss -xl` lists them. Clients reach the new one only."""
    path = workspace().path("twice.sock")
    with socket.socket(socket.AF_UNIX) as old, socket.socket(socket.AF_UNIX) as new, \
            socket.socket(socket.AF_UNIX) as client:
        old.bind(path)
        old.listen(2)
        os.unlink(path)
        new.bind(path)
        new.listen(3)
        client.connect(path)
        try:
            assert [s.recv_q for s in sock_diag.unix(1 << sock_diag.LISTEN) if s.name == os.fsencode(path)] \
                in ([0, 1], [1, 0])
            assert accept_queue(path) == AcceptQueue(queued=1, backlog=3)
        finally:
            os.unlink(path)
