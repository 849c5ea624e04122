"""Misbehaving solutions for the runner's part of every checker (imported by test_exercises_attacks).

Each is written as a student would paste it in a cell; the checkers run only its source."""

import os
import socket


def socket_fds_fork_child_holding_stdout(pid):
    if os.fork() == 0:
        import time
        time.sleep(600)
    return []


def socket_fds_detached_child(pid):
    import subprocess
    subprocess.Popen(["sleep", "600"], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:"))


def socket_fds_double_fork(pid):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            time.sleep(600)
        os._exit(0)
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:"))


def socket_fds_pickle_reduce_exploit(pid):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/pwned-by-student",))
    return Evil()


def socket_fds_os_exit(pid):
    os._exit(0)


def socket_fds_non_daemon_thread(pid):
    import threading
    import time
    threading.Thread(target=time.sleep, args=(30,)).start()
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:"))


def socket_fds_keyboard_interrupt(pid):
    raise KeyboardInterrupt


def socket_fds_system_exit(pid):
    raise SystemExit(2)


def socket_fds_sigint_to_parent(pid):
    import signal
    os.kill(os.getppid(), signal.SIGINT)
    return []


def socket_fds_helper_outside(pid):
    return sorted(helper(pid))  # noqa: F821 (defined elsewhere in the cell: not sent)


def socket_fds_generator(pid):
    return (int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def socket_fds_blacklist(pid):
    found = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{n}")
        if not target.startswith("pipe:") and not target.startswith("/dev"):
            found.append(int(n))
    return sorted(found)


def socket_fds_hardcoded(pid):
    return [3, 4, 5, 6, 7]


def socket_fds_prints_a_lot(pid):
    for i in range(20000):
        print("debug line", i)
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:"))


def socket_fds_stat_alternative(pid):
    import stat
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if stat.S_ISSOCK(os.stat(f"/proc/{pid}/fd/{name}").st_mode):
                found.append(int(name))
        except OSError:
            pass
    return sorted(found)


def socket_fds_pathlib(pid):
    import pathlib
    return sorted(int(p.name) for p in pathlib.Path(f"/proc/{pid}/fd").iterdir() if os.readlink(p).startswith("socket:"))


socket_fds_lambda = lambda pid: sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:"))  # noqa: E501, E731


def next_fd_from_three(pid):
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    fd = 3
    while fd in used:
        fd += 1
    return fd


def next_fd_hardcoded(pid):
    return 3


def next_fd_returns_str(pid):
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    return str(min(set(range(len(used) + 1)) - used))


def next_fd_kills_the_process(pid):
    import signal
    os.kill(pid, signal.SIGKILL)
    return 3


def next_fd_stops_the_process(pid):
    import signal
    os.kill(pid, signal.SIGSTOP)
    return 3


def next_fd_set_difference(pid):
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    return min(set(range(len(used) + 1)) - used)


def next_fd_sorted_scan(pid):
    expected = 0
    for fd in sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd")):
        if fd != expected:
            break
        expected += 1
    return expected


def default_protocol_table(family, type):
    table = {(2, 1): 6, (2, 2): 17, (10, 1): 6, (1, 1): 0, (1, 2): 0, (1, 5): 0}
    return table.get((int(family), int(type)))


def default_protocol_never_closes(family, type):
    try:
        s = socket.socket(family, type, 0)
    except OSError:
        return None
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)


def default_protocol_try_finally(family, type):
    try:
        s = socket.socket(family, type, 0)
    except Exception:
        return None
    try:
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    finally:
        s.close()


def default_protocol_proto_attribute(family, type):
    try:
        with socket.socket(family, type, 0) as s:
            return s.proto
    except OSError:
        return None


# -- the review's false passes, one per finding of the per-exercise section ----------------------


def remove_if_stale_unlink_on_any_error(path):
    import stat
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        try:
            s.connect(path)
            return False
        except OSError:
            os.unlink(path)
            return True


def remove_if_stale_blocking_probe(path):
    import errno
    import stat
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        if s.connect_ex(path) != errno.ECONNREFUSED:
            return False
    os.unlink(path)
    return True


def remove_if_stale_never_closes_probe(path):
    import errno
    import stat
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    if s.connect_ex(path) != errno.ECONNREFUSED:
        return False
    os.unlink(path)
    return True


def remove_if_stale_name_based(path):
    if "stale" in path:
        os.unlink(path)
        return True
    return False


def remove_if_stale_pathlib(path):
    import errno
    import pathlib
    p = pathlib.Path(path)
    if not p.is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        if s.connect_ex(path) != errno.ECONNREFUSED:
            return False
    p.unlink()
    return True


def peer_uid_returns_gid(name):
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return gid


def peer_uid_struct_from_notebook(name):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]  # noqa: F821


def peer_uid_proc_status(name):
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


def queued_connections_decimal(port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return int(fields[4].split(":")[1], 10)
    return 0


def queued_connections_hardcoded(port):
    queued_connections_hardcoded.calls = getattr(queued_connections_hardcoded, "calls", -1) + 1
    return [0, 3, 2][queued_connections_hardcoded.calls % 3]


def queued_connections_ss(port):
    import subprocess
    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split()[1]) if out.split() else 0


def connect_with_deadline_sleep_whole(path, seconds):
    import time
    for attempt in range(2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                if attempt == 0:
                    time.sleep(seconds)
    return False


def connect_with_deadline_ignores_seconds(path, seconds):
    import time
    deadline = time.monotonic() + 1.0
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def connect_with_deadline_busy_loop(path, seconds):
    import time
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                pass
        if time.monotonic() >= deadline:
            return False


def connect_with_deadline_overshoot(path, seconds):
    import time
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(0.05 if left > 0.5 else 0.9)  # retries often, then oversleeps the deadline


def serve_until_stopped_idle_timeout(path, stop_after):
    served = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.settimeout(stop_after)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            with conn:
                conn.sendall(b"bye")
            served += 1
    os.unlink(path)
    return served


def serve_until_stopped_busy(path, stop_after):
    import time
    served, end = 0, time.monotonic() + stop_after
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.setblocking(False)
        while time.monotonic() < end:
            try:
                conn, _ = server.accept()
            except BlockingIOError:
                continue
            with conn:
                conn.sendall(b"bye")
            served += 1
    os.unlink(path)
    return served


def serve_until_stopped_two_then_sleep(path, stop_after):
    import time
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"bye")
        time.sleep(max(0, stop_after - (time.monotonic() - start)))
    os.unlink(path)
    return 2


def backoff_delays_linear(n, base, cap):
    import random
    return [random.uniform(0, min(cap, base * (k + 1))) for k in range(n)]


def backoff_delays_off_by_one(n, base, cap):
    import random
    return [random.uniform(0, min(cap, base * 2 ** (k + 1))) for k in range(n)]


def backoff_delays_jitter_only_capped(n, base, cap):
    import random
    return [random.uniform(0, cap) if base * 2 ** k >= cap else base * 2 ** k for k in range(n)]


def backoff_delays_bimodal(n, base, cap):
    import random
    return [random.choice([0.0, min(cap, base * 2 ** k)]) for k in range(n)]


def backoff_delays_equal_jitter(n, base, cap):
    import random
    return [min(cap, base * 2 ** k) / 2 + random.uniform(0, min(cap, base * 2 ** k) / 2) for k in range(n)]


def backoff_delays_fixed_seed(n, base, cap):
    import random
    rng = random.Random(42)
    return [rng.uniform(0, min(cap, base * 2 ** k)) for k in range(n)]


def backoff_delays_expovariate_free(n, base, cap):
    import random
    out = []
    for k in range(n):
        out.append(min(cap, base * 2 ** k) * random.random())
    return out


def connect_with_retry_constant(path, attempts, base, cap):
    import time
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if k == attempts - 1:
                raise
        time.sleep(cap)


def connect_with_retry_linear(path, attempts, base, cap):
    import time
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if k == attempts - 1:
                raise
        time.sleep(min(cap, base * (k + 1)))


def connect_with_retry_leaks(path, attempts, base, cap):
    import time
    global kept
    kept = []
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            kept.append(s)
            if k == attempts - 1:
                raise
        time.sleep(min(cap, base * 2 ** k))


def connect_with_retry_raises_first(path, attempts, base, cap):
    import time
    first = None
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError) as error:
            s.close()
            first = first or error
        if k < attempts - 1:
            time.sleep(min(cap, base * 2 ** k))
    raise first


def connect_with_retry_connect_ex(path, attempts, base, cap):
    import errno
    import time
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        err = s.connect_ex(path)
        if err == 0:
            return s
        s.close()
        if err not in (errno.ENOENT, errno.ECONNREFUSED) or k == attempts - 1:
            raise OSError(err, os.strerror(err))
        time.sleep(min(cap, base * 2 ** k))


def serve_one_two_recvs(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(4096)
            request += conn.recv(4096)
            conn.sendall(request.upper())
    return request


def serve_one_makefile(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as f:
            request = f.read()
            conn.sendall(request.upper())
    return request


def ask_two_recvs(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(4096) + sock.recv(4096)


def ask_shut_rdwr(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_RDWR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return reply


def ask_makefile(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as f:
            return f.read()


def request_reply_send_twice(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(request, address)
        sock.sendto(request, address)
        sock.settimeout(1.0)
        try:
            return sock.recvfrom(65536)[0]
        except TimeoutError:
            return None


def request_reply_timeout_1_4(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.4)
        for _ in range(2):
            sock.sendto(request, address)
            try:
                return sock.recvfrom(65536)[0]
            except TimeoutError:
                continue
    return None


def request_reply_select(address, request):
    import select
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for _ in range(2):
            sock.sendto(request, address)
            if select.select([sock], [], [], 0.5)[0]:
                return sock.recv(65536)
    return None


def request_reply_connected(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.settimeout(0.5)
        for _ in range(2):
            sock.send(request)
            try:
                return sock.recv(65536)
            except TimeoutError:
                pass
    return None


def echo_server_fixed3(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(3):
            data, sender = sock.recvfrom(65536)
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received


def echo_server_until_bye(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        while not received or received[-1] != b"bye":
            data, sender = sock.recvfrom(65536)
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received


def echo_server_buffer_4096(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            data, sender = sock.recvfrom(4096)
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received


def echo_server_recvmsg(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            data, _, flags, sender = sock.recvmsg(65536)
            assert not flags & socket.MSG_TRUNC
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received


def echo_server_bytearray_buffer(path, count):
    received = []
    buffer = bytearray(65536)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            size, sender = sock.recvfrom_into(buffer)
            received.append(bytes(buffer[:size]))
            sock.sendto(bytes(buffer[:size]).upper(), sender)
    return received


# -- more wrong solutions and correct alternatives, to have 8 and 2 for every exercise ----------


def default_protocol_returns_the_type(family, type):
    return int(type)


def default_protocol_annotated(family: int, type: int) -> int | None:
    try:
        with socket.socket(family, type) as s:
            return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    except Exception:
        return None


def remove_if_stale_exists_then_stat(path):
    import errno
    import stat
    if not os.path.exists(path) or not stat.S_ISSOCK(os.stat(path).st_mode):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        if probe.connect_ex(path) != errno.ECONNREFUSED:
            return False
    finally:
        probe.close()
    os.unlink(path)
    return True


def peer_uid_str(name):
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            return str(struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1])


def peer_uid_listener_creds(name):
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        conn.close()
        return struct.unpack("3i", listener.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]


def peer_uid_unsigned(name):
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            return struct.unpack("iII", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]


def queued_connections_first_listener(port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    return 0


def queued_connections_counting_lines(port):
    with open("/proc/net/tcp") as f:
        next(f)
        return sum(1 for line in f if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] != "0A")


def queued_connections_ss_with_header(port):
    import subprocess
    lines = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout.splitlines()[1:]
    for line in lines:
        fields = line.split()
        if fields[3].rsplit(":", 1)[1] == str(port):
            return int(fields[1])
    return 0


def connect_with_deadline_fixed_pause(path, seconds):
    import time
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                pass
        if time.monotonic() + 0.02 > deadline:
            return False
        time.sleep(0.02)


def connect_with_deadline_one_socket(path, seconds):
    import time
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        while True:
            try:
                s.connect(path)
                return True
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.03, left))


def serve_clients_fork_leaves_child(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        if os.fork() == 0:
            import time
            time.sleep(600)
        for _ in range(n):
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())
    os.unlink(path)
    return n


def serve_clients_read_until_eof(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()
            with conn:
                data = b""
                while chunk := conn.recv(1024):
                    data += chunk
                conn.sendall(data.upper())
    os.unlink(path)
    return n


def serve_clients_os_exit_at_end(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())
    os.unlink(path)
    os._exit(0)


def serve_clients_three(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(3):
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())
    os.unlink(path)
    return 3


def serve_clients_socketserver(path, n):
    import socketserver

    class Upper(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(self.request.recv(1024).upper())

    with socketserver.UnixStreamServer(path, Upper) as server:
        for _ in range(n):
            server.handle_request()
    os.unlink(path)
    return n


def serve_clients_thread_per_client(path, n):
    import threading

    def serve(conn):
        with conn:
            conn.sendall(conn.recv(1024).upper())

    workers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()
            worker = threading.Thread(target=serve, args=(conn,))
            worker.start()
            workers.append(worker)
    for worker in workers:
        worker.join()
    os.unlink(path)
    return n


def serve_until_stopped_leaves_file(path, stop_after):
    import threading
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    stopper = threading.Timer(stop_after, server.shutdown, args=(socket.SHUT_RDWR,))
    stopper.start()
    served = 0
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            break
        with conn:
            conn.sendall(b"bye")
        served += 1
    stopper.join()
    server.close()
    return served


def serve_until_stopped_returns_none(path, stop_after):
    import threading
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    stopper = threading.Timer(stop_after, server.shutdown, args=(socket.SHUT_RDWR,))
    stopper.start()
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            break
        with conn:
            conn.sendall(b"bye")
    stopper.join()
    server.close()
    os.unlink(path)


def serve_until_stopped_selector(path, stop_after):
    import selectors
    import threading
    wake_r, wake_w = socket.socketpair()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    stopper = threading.Timer(stop_after, wake_w.send, args=(b"x",))
    stopper.start()
    served = 0
    with selectors.DefaultSelector() as sel:
        sel.register(server, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        stopping = False
        while not stopping:
            for key, _ in sel.select():
                if key.fileobj is wake_r:
                    stopping = True
                else:
                    conn, _ = server.accept()
                    with conn:
                        conn.sendall(b"bye")
                    served += 1
    stopper.join()
    for s in (server, wake_r, wake_w):
        s.close()
    os.unlink(path)
    return served


def serve_until_stopped_self_connect(path, stop_after):
    import threading
    import time
    stop = threading.Event()

    def wake():
        time.sleep(stop_after)
        stop.set()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    waker = threading.Thread(target=wake)
    waker.start()
    served = 0
    while True:
        conn, _ = server.accept()
        with conn:
            if stop.is_set():
                break
            conn.sendall(b"bye")
        served += 1
    waker.join()
    server.close()
    os.unlink(path)
    return served


def backoff_delays_system_random(n, base, cap):
    import random
    rng = random.SystemRandom()
    return tuple(rng.uniform(0, min(cap, base * 2 ** k)) for k in range(n))


def connect_with_retry_logging(path, attempts, base, cap):
    import time
    for k in range(attempts):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            print(f"attempt {k + 1}: connected")
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as error:
            sock.close()
            print(f"attempt {k + 1}: {error}")
            if k == attempts - 1:
                raise
        except BaseException:
            sock.close()
            raise
        time.sleep(min(cap, base * 2 ** k))


def serve_one_hardcoded_length(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            request = b""
            while len(request) < 13:
                request += conn.recv(4096)
            conn.sendall(request.upper())
    return request


def serve_one_returns_upper(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            request = b""
            while chunk := conn.recv(4096):
                request += chunk
            conn.sendall(request.upper())
    return request.upper()


def serve_one_never_closes_listener(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    conn, _ = listener.accept()
    with conn:
        request = b""
        while chunk := conn.recv(4096):
            request += chunk
        conn.sendall(request.upper())
    return request


def serve_one_recv_into(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            buffer, request = bytearray(4), b""
            while size := conn.recv_into(buffer):
                request += bytes(buffer[:size])
            conn.sendall(request.upper())
    return request


def ask_never_closes(path, request):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(request)
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    return reply


def ask_recv_into(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        buffer, reply = bytearray(5), bytearray()
        while size := sock.recv_into(buffer):
            reply += buffer[:size]
    return bytes(reply)


def request_reply_busy_poll(address, request):
    import time
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        for _ in range(2):
            sock.sendto(request, address)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                try:
                    return sock.recv(65536)
                except BlockingIOError:
                    pass
    return None


def request_reply_never_closes(address, request):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    for _ in range(2):
        sock.sendto(request, address)
        try:
            return sock.recvfrom(65536)[0]
        except TimeoutError:
            pass
    return None


def echo_server_stream_socket(path, count):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)
        sock.listen()
        conn, _ = sock.accept()
        with conn:
            return [conn.recv(65536) for _ in range(count)]


def echo_server_recv_without_sender(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            received.append(sock.recv(65536))
    return received


def serve_until_stopped_polling_no_thread(path, stop_after):
    import time
    end, served = time.monotonic() + stop_after, 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.settimeout(0.05)
        while time.monotonic() < end:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"bye")
            served += 1
    os.unlink(path)
    return served
