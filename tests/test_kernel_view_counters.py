"""helpers.kernel_view.net_counter against real events: the kernel's counters rise when the event happens."""

import socket

import pytest

from helpers.kernel_view import net_counter


def test_tcp_abort_on_close_rises_when_unread_bytes_are_thrown_away():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        client.sendall(b"never read")
        client.close()
        conn.settimeout(2)
        assert conn.recv(1, socket.MSG_PEEK) == b"n"  # the bytes are queued, and stay unread
        before = net_counter("TcpExt", "TCPAbortOnClose")
        conn.close()  # unread bytes: RST instead of FIN
    assert net_counter("TcpExt", "TCPAbortOnClose") >= before + 1


def test_udp_noports_rises_for_a_datagram_to_nobody():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        address = gone.getsockname()
    before = net_counter("Udp", "NoPorts")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"anyone?", address)
    assert net_counter("Udp", "NoPorts") >= before + 1


def test_an_unknown_counter_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="Udp NoSuchThing"):
        net_counter("Udp", "NoSuchThing")
