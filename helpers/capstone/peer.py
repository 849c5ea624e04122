"""A peer of the gauntlet that must be a process of its own: `python peer.py MODE PATH`.

    partial   connect, send the start of a request, say "sent" once the server has read it, then
              wait to be killed (a client killed mid-request)
    ask       connect, send one request, say what came back: "answered", "closed" or "error ENAME"
              (run as another user: is a peer of another uid refused?)

Standard library only, so that any user's Python can run it; it ends itself after 10 s whatever happens.
"""

import errno
import fcntl
import signal
import socket
import struct
import sys
import termios
import time


def unread(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def main():
    signal.alarm(10)
    mode, path = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(3)
    try:
        sock.connect(path)
    except OSError as error:
        print("error", errno.errorcode.get(error.errno, error.errno), flush=True)
        return
    if mode == "partial":
        sock.sendall(struct.pack("!I", 100) + b"only ten b")  # 10 of the 100 bytes announced
        deadline = time.monotonic() + 3
        while unread(sock) and time.monotonic() < deadline:
            time.sleep(0.002)
        print("sent", flush=True)
        signal.pause()
    else:
        try:
            sock.sendall(struct.pack("!I", 5) + b"hello")  # EPIPE if the server has closed already
            data = sock.recv(100)
        except TimeoutError:
            print("silent", flush=True)
        except OSError as error:
            print("closed", errno.errorcode.get(error.errno, error.errno), flush=True)
        else:
            print("answered" if data else "closed", flush=True)


if __name__ == "__main__":
    main()
