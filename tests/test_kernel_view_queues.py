"""helpers.kernel_view.accept_queue against real sockets: only a listening socket has an accept queue."""

import os
import socket

import pytest

from helpers import workspace
from helpers.kernel_view import AcceptQueue, accept_queue


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
