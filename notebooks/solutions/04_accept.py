"""Reference solutions for the exercises of 04-accept.ipynb.

Each function is self-contained: the checker runs its source in a fresh process where errno, os,
random, select, selectors, signal, socket, stat, threading and time are already imported.
"""

import os
import socket
import threading


def serve_clients(path, n):
    """Listen at `path`; serve `n` clients one after another: read one message, send it back
    upper-cased, close that connected socket. Then close the listening socket, remove the socket
    file, and return the number of clients served."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()          # a new connected socket; the peer address is not needed
            with conn:                         # closed at the end of the block: the client sees EOF
                conn.sendall(conn.recv(1024).upper())
        return n
    finally:
        server.close()
        os.unlink(path)


def serve_until_stopped(path, stop_after):
    """Listen at `path` and answer every client with b"bye" until a second thread stops the server
    `stop_after` seconds later; return within 0.5 s of the stop with the number of clients served,
    the listening socket closed and the socket file removed."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    # On Linux, shutdown() wakes a blocked accept (it fails with EINVAL); close() from another thread
    # would not. (Elsewhere shutdown() of a listening socket may fail with ENOTCONN: see the lesson.)
    stopper = threading.Timer(stop_after, server.shutdown, args=(socket.SHUT_RDWR,))
    stopper.start()
    served = 0
    try:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:                    # EINVAL: the listening socket was shut down
                break
            with conn:
                conn.sendall(b"bye")
            served += 1
    finally:
        stopper.cancel()
        server.close()
        os.unlink(path)
    return served
