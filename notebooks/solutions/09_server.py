"""server.py, the reference solution of 09-capstone: an upper-casing server on an AF_UNIX stream socket.

    python server.py PATH          (stop it with Ctrl-C or `kill PID`: SIGINT and SIGTERM stop it cleanly)

The protocol (the same in client.py):
- a message is a 4-byte big-endian length, then that many bytes; at most 65536 bytes;
- the client sends a request, the server answers with one message: the request upper-cased;
- a connection carries any number of requests, one after another; it ends when the client closes it,
  or shuts down writing (the server answers what it received, then closes);
- a length over 65536, a peer of another user, or a request cut short: the server closes that
  connection without an answer and goes on serving everybody else.

Start-up (lesson 02): a stale socket file is removed; a live server's is left alone and we refuse to
start (exit status 1). The socket file is made 0600: only our user may connect, and SO_PEERCRED checks
it again for each connection. Many clients at once (08): a thread per connection. A graceful stop (04):
SIGTERM wakes accept() by shutting down the listening socket; requests in flight are answered, idle
connections are closed, the socket file is removed, and the exit status is 0.
"""

import errno
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

MAX_MESSAGE = 65536
STOP_GRACE = 1.5  # seconds the requests in flight get to finish after SIGTERM


# -- from 02: start-up ---------------------------------------------------------------------------

def remove_if_stale(path):
    """Unlink `path` if it is a socket file nobody listens on; return True if removed, else False."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a live server with a full accept queue must not make us wait
        err = probe.connect_ex(path)
    if err != errno.ECONNREFUSED:
        return False
    os.unlink(path)
    return True


def peer_uid(conn):
    """The uid of the process that connected `conn` (SO_PEERCRED: pid, uid, gid)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


# -- from 07: framing ----------------------------------------------------------------------------

def recv_exactly(sock, n):
    """Exactly `n` bytes from `sock`; EOFError if the peer closes before they have all come."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"the peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def send_message(sock, message):
    """Send `message` as one frame: its length (4 bytes, big-endian), then the bytes."""
    sock.sendall(struct.pack("!I", len(message)) + message)


def recv_message(sock, limit=MAX_MESSAGE):
    """The next message; None if the peer closed between messages; EOFError inside one; ValueError if too long."""
    first = sock.recv(1)
    if not first:
        return None
    (length,) = struct.unpack("!I", first + recv_exactly(sock, 3))
    if length > limit:
        raise ValueError(f"a message of {length} bytes announced; the limit is {limit}")
    return recv_exactly(sock, length)


# -- serving -------------------------------------------------------------------------------------

def open_listener(path):
    """A listening socket at `path`, its file 0600; None if a live server already owns `path`."""
    remove_if_stale(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the file is born 0600: no moment when others could connect
    try:
        listener.bind(path)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            return None
        raise
    finally:
        os.umask(old_umask)
    listener.listen()
    return listener


def serve_connection(conn, stopping):
    """Answer the requests on `conn` until the client is done, or until `stopping` is readable between two requests."""
    with conn:
        if peer_uid(conn) != os.getuid():
            return  # another user got past the file's mode (an abstract name, a chmod): no answer
        while True:
            readable, _, _ = select.select([conn, stopping], [], [])
            if conn not in readable:
                return  # stopping, and no request has begun: close this idle connection
            try:
                request = recv_message(conn)
            except (EOFError, ValueError, ConnectionError):
                return  # cut short, too long, or reset: this client is gone, the others are not
            if request is None:
                return  # end of file between requests: the client is done
            send_message(conn, request.upper())


def main():
    if len(sys.argv) != 2:
        print("usage: python server.py PATH", file=sys.stderr)
        return 2
    path = sys.argv[1]
    listener = open_listener(path)
    if listener is None:
        print(f"server.py: a live server already listens at {path}; not starting", file=sys.stderr)
        return 1
    stop_reader, stop_writer = socket.socketpair()

    def stop(signum, frame):
        stop_writer.send(b"!")  # every connection waiting for its next request sees this
        listener.shutdown(socket.SHUT_RDWR)  # accept() fails with EINVAL now (lesson 04)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"server.py: serving at {path} (pid {os.getpid()})", flush=True)
    workers = []
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            break  # EINVAL: the listening socket was shut down, we are stopping
        worker = threading.Thread(target=serve_connection, args=(conn, stop_reader), daemon=True)
        worker.start()
        workers = [w for w in workers if w.is_alive()] + [worker]
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    listener.close()
    os.unlink(path)
    print("server.py: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
