"""client.py, the reference solution of 09-capstone: ask the server one question, print its answer.

    python client.py PATH MESSAGE

Connects to the AF_UNIX stream server at PATH, retrying with a growing delay while the server is not
there yet (lesson 05): a missing socket file (ENOENT) or a stale one (ECONNREFUSED) may be a server
restarting. Then it sends MESSAGE as one framed request (a 4-byte big-endian length, then the bytes;
lesson 07), reads the one framed reply, prints it and exits with status 0. Anything else (the server
never came, it closed without answering): a message on stderr and exit status 1.
"""

import socket
import struct
import sys
import time

ATTEMPTS, BASE, CAP = 8, 0.05, 1.0  # waits of 0.05, 0.1, 0.2, ... 1 s: about 3.5 s in all


def connect_with_retry(path, attempts=ATTEMPTS, base=BASE, cap=CAP):
    """A socket connected to `path`, after up to `attempts` tries with waits of min(cap, base * 2**k)."""
    for k in range(attempts):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if k == attempts - 1:
                raise
        except BaseException:
            sock.close()
            raise
        time.sleep(min(cap, base * 2 ** k))
    raise ValueError("attempts must be at least 1")


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


def recv_message(sock, limit=65536):
    """The next message; None if the peer closed between messages; EOFError inside one; ValueError if too long."""
    first = sock.recv(1)
    if not first:
        return None
    (length,) = struct.unpack("!I", first + recv_exactly(sock, 3))
    if length > limit:
        raise ValueError(f"a message of {length} bytes announced; the limit is {limit}")
    return recv_exactly(sock, length)


def main():
    if len(sys.argv) != 3:
        print("usage: python client.py PATH MESSAGE", file=sys.stderr)
        return 2
    path, message = sys.argv[1], sys.argv[2].encode()
    try:
        sock = connect_with_retry(path)
    except OSError as error:
        print(f"client.py: no server at {path}: {error.strerror}", file=sys.stderr)
        return 1
    with sock:
        send_message(sock, message)
        try:
            reply = recv_message(sock)
        except (EOFError, ValueError, ConnectionError) as error:
            reply, problem = None, str(error)
        else:
            problem = "it closed the connection without answering"
    if reply is None:
        print(f"client.py: the server did not answer: {problem}", file=sys.stderr)
        return 1
    print(reply.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
