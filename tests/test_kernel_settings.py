"""The kernel-settings helpers of helpers.kernel_view against the real kernel: sysctls, event counters,
and the SYN resend schedule that lessons 03 and 05 predict and then measure."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from helpers.kernel_view import net_counters, predict_syn_schedule, syn_schedule, sysctl, tcp_sockets, watch_resends

# Measured on Linux 6.18 in private network namespaces (unshare -n) with each tcp_syn_linear_timeouts
# (None: the rule of kernels before 6.5, the same as 0), watching the `ss -o` retransmit count:
# (linear_timeouts, TCP_SYNCNT) -> (resends at, ETIMEDOUT at), whole seconds after connect().
MEASURED = {
    (0, 1): ((1,), 3), (0, 2): ((1, 3), 7), (0, 3): ((1, 3, 7), 15), (0, 6): ((1, 3, 7, 15, 31, 63), 127),
    (1, 1): ((1, 2), 4), (1, 2): ((1, 2, 4), 8), (1, 3): ((1, 2, 4, 8), 16),
    (2, 1): ((1, 2), 3), (2, 2): ((1, 2, 3, 5), 9), (2, 3): ((1, 2, 3, 5, 9), 17),
    (4, 1): ((1, 2), 3), (4, 2): ((1, 2, 3, 4, 5), 7), (4, 3): ((1, 2, 3, 4, 5, 7, 11), 19),
    (4, 6): ((1, 2, 3, 4, 5, 7, 11, 19, 35, 67), 131),
}


@pytest.mark.parametrize(("linear", "retries"), sorted(MEASURED))
def test_the_predicted_schedule_is_the_measured_one(linear, retries):
    schedule = predict_syn_schedule(retries, linear)
    assert (schedule.resends, schedule.gives_up) == MEASURED[linear, retries]


def test_before_linux_6_5_the_schedule_doubles_from_the_start():
    assert predict_syn_schedule(6, None).resends == MEASURED[0, 6][0]


@pytest.mark.parametrize("retries", [1, 2, 6, 8])
def test_etimedout_is_a_time_budget_not_a_count(retries):
    budgets = {1: 3, 2: 7, 6: 127, 8: 127 + 2 * 120}  # 2**(n+1) - 1 s, then 120 s per resend
    for linear in (None, 0, 1, 4, 10):
        schedule = predict_syn_schedule(retries, linear)
        assert schedule.budget == budgets[retries]
        assert schedule.resends[-1] < schedule.budget <= schedule.gives_up


def test_sysctl_reads_a_setting_and_answers_none_for_a_missing_one():
    with open("/proc/sys/net/core/somaxconn") as f:
        assert sysctl("net.core.somaxconn") == int(f.read())
    assert sysctl("net.ipv4.no_such_setting") is None


def test_a_syn_dropped_at_a_full_queue_is_resent_as_predicted_and_counted():
    """TCP_SYNCNT 1 (3 s budget) against a full accept queue: the resends and ETIMEDOUT where the
    settings of this machine put them, and ListenOverflows counting the SYN and each resend."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()
        fillers = [socket.create_connection(address) for _ in range(2)]  # backlog + 1 fit
        client = socket.socket()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
        outcome = []
        before = net_counters()["TcpExt"]["ListenOverflows"]
        started = time.monotonic()
        thread = threading.Thread(target=lambda: outcome.append(client.connect_ex(address)))
        thread.start()
        try:
            deadline = time.monotonic() + 2
            while not any(s.state == "SYN-SENT" for s in tcp_sockets(address[1])) and time.monotonic() < deadline:
                time.sleep(0.001)
            local = client.getsockname()
            seen = watch_resends(local, started, lambda times: not thread.is_alive(), timeout=10)
            ended = time.monotonic() - started
        finally:
            thread.join(10)
            client.close()
            for sock in fillers:
                sock.close()
    schedule = syn_schedule(1)
    assert outcome == [110]  # ETIMEDOUT
    assert schedule.matches(seen, ended), (schedule, seen, ended)
    assert net_counters()["TcpExt"]["ListenOverflows"] - before >= 1 + len(seen)
