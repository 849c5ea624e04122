"""Reference solutions for the exercises of 08-many-clients.ipynb.

Each function is self-contained: the checker runs its source in a fresh process where errno, os,
random, select, selectors, signal, socket, stat, threading and time are already imported.
"""

import os
import selectors
import socket
import threading
import time


def serve_threads(path, seconds):
    """Serve each client at `path` in a thread of its own; stop after `seconds`; return how many were accepted."""
    open_conns, lock = set(), threading.Lock()

    def serve(conn):
        try:
            while data := conn.recv(1024):
                conn.sendall(data.upper())
        except OSError:                           # the client vanished, or we shut it down
            pass
        finally:
            with lock:
                open_conns.discard(conn)
            conn.close()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    stopper = threading.Timer(seconds, listener.shutdown, args=(socket.SHUT_RDWR,))  # wakes accept (04)
    stopper.start()
    workers, accepted = [], 0
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:                       # EINVAL: shut down, time to stop
                break
            accepted += 1
            with lock:
                open_conns.add(conn)
            worker = threading.Thread(target=serve, args=(conn,))
            worker.start()
            workers.append(worker)
        with lock:
            for conn in open_conns:
                conn.shutdown(socket.SHUT_RDWR)   # wakes a thread asleep in recv: it reads b''
        for worker in workers:
            worker.join()
    finally:
        stopper.cancel()
        stopper.join()
        listener.close()
        os.unlink(path)
    return accepted


def serve_selector(path, seconds):
    """Serve every client at `path` from one thread with a selector; stop after `seconds`; return how many."""
    deadline = time.monotonic() + seconds
    sel = selectors.DefaultSelector()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    accepted = 0

    def serve_ready(key, mask):
        conn, client = key.fileobj, key.data
        try:
            if mask & selectors.EVENT_READ:
                data = conn.recv(65536)
                client["owed"] += data.upper()
                client["eof"] = not data
            if client["owed"]:
                del client["owed"][:conn.send(client["owed"])]
        except BlockingIOError:
            pass
        except ConnectionError:                   # vanished: forget it
            client["eof"], client["owed"] = True, bytearray()
        if client["eof"] and not client["owed"]:
            sel.unregister(conn)
            conn.close()
        else:
            wanted = (0 if client["eof"] else selectors.EVENT_READ) | (selectors.EVENT_WRITE if client["owed"] else 0)
            sel.modify(conn, wanted, client)

    try:
        while (left := deadline - time.monotonic()) > 0:
            for key, mask in sel.select(timeout=left):
                if key.fileobj is listener:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        continue
                    accepted += 1
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, {"owed": bytearray(), "eof": False})
                else:
                    serve_ready(key, mask)
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
        os.unlink(path)
    return accepted
