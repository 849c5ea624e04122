"""Reference solutions for the exercises of 07-datagrams.ipynb (same names as the stubs)."""

import socket


def request_reply(address, request):
    """Send `request` to the UDP server at `address`; wait 0.5 s for the reply, retry once; None if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))  # left unbound, the first sendto would bind it to 0.0.0.0
        sock.settimeout(0.5)
        for _ in range(2):  # the first try and one retry
            sock.sendto(request, address)
            try:
                reply, _ = sock.recvfrom(65536)
                return reply
            except TimeoutError:  # socket.timeout: nothing came in time
                continue
    return None


def echo_server(path, count):
    """Bind a datagram socket at `path`; answer `count` datagrams upper-cased to their senders; return them."""
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            data, sender = sock.recvfrom(65536)  # one whole datagram, and who sent it
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received
