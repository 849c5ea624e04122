"""Reference solutions for 03-listen-and-backlog. Each function is self-contained, as the student's must be."""

import socket
import time


def queued_connections(port):
    """How many connections wait in the accept queue of the TCP listener on 127.0.0.1:`port`."""
    with open("/proc/net/tcp") as f:
        next(f)  # the header
        for line in f:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A = LISTEN; the port is in hex
                tx_queue, rx_queue = queues.split(":")
                return int(rx_queue, 16)  # for a listening socket: connections waiting for accept()
    return 0


def connect_with_deadline(path, seconds):
    """Connect to the AF_UNIX server at `path`, waiting at most `seconds` while its queue is full."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)  # blocking, it would sleep until accept (SO_SNDTIMEO could bound that)
            try:
                s.connect(path)
                return True
            except BlockingIOError:  # EAGAIN: the accept queue is full right now
                pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.1)
