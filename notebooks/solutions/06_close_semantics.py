"""Reference solutions for the exercises of 06-close-semantics.ipynb (same names as the stubs)."""

import socket


def serve_one(path):
    """Serve one client at `path`: read its request until end of file, answer it upper-cased, close."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            request = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:  # b'': the client shut down writing, the request is complete
                    break
                request += chunk
            conn.sendall(request.upper())
    return request


def ask(path, request):
    """Send `request` to the server at `path`, half-close, and return its whole reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # "that was all": the server reads b'' and answers
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return reply
