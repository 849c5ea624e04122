"""The review's attacks on the checkers (reviews/exercises.md): wrong, cheating and misbehaving
solutions that must fail with the right message, and correct alternatives that must pass. The
solutions are in attacks_runner.py, written as a student would paste them in a cell."""

from __future__ import annotations

import os

import attacks_runner as a
import pytest
from exercise_support import assert_caught, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import (
    check_ask,
    check_backoff_delays,
    check_connect_with_deadline,
    check_connect_with_retry,
    check_default_protocol,
    check_echo_server,
    check_next_fd,
    check_peer_uid,
    check_queued_connections,
    check_remove_if_stale,
    check_request_reply,
    check_serve_clients,
    check_serve_one,
    check_serve_until_stopped,
    check_socket_fds,
)

ROOT = os.geteuid() == 0

CAUGHT = [
    # the runner: nothing escapes, every misbehaviour gets a one-line truth
    (check_socket_fds, a.socket_fds_fork_child_holding_stdout, ["left process", "a fork of your function's process"]),
    (check_socket_fds, a.socket_fds_detached_child, ["left process", "sleep 600", "we killed it"]),
    (check_socket_fds, a.socket_fds_double_fork, ["left process", "we killed it"]),
    (check_socket_fds, a.socket_fds_pickle_reduce_exploit, ["(Evil)"]),
    (check_socket_fds, a.socket_fds_os_exit, ["ended its own process (exit status 0, e.g. os._exit)"]),
    (check_socket_fds, a.socket_fds_non_daemon_thread, ["left a thread running", "join()"]),
    (check_socket_fds, a.socket_fds_keyboard_interrupt, ["raised KeyboardInterrupt (what Ctrl-C raises)"]),
    (check_socket_fds, a.socket_fds_system_exit, ["called sys.exit(2) (SystemExit)"]),
    (check_socket_fds, a.socket_fds_sigint_to_parent, ["missed the socket(s)"]),
    (check_socket_fds, a.socket_fds_helper_outside, ["NameError", "Only your function's own source runs"]),
    (check_socket_fds, a.socket_fds_generator, ["(generator)", "return a sorted list of ints"]),
    (check_socket_fds, a.socket_fds_blacklist, ["not sockets: fd", "keep only the descriptors"]),
    (check_socket_fds, a.socket_fds_hardcoded, ["socket"]),
    (check_next_fd, a.next_fd_from_three, ["with stdin (fd 0) closed", "0 is free"]),
    (check_next_fd, a.next_fd_hardcoded, ["but socket() gave"]),
    (check_next_fd, a.next_fd_returns_str, ["(str)", "return the number as an int"]),
    (check_next_fd, a.next_fd_kills_the_process, ["was killed by your function"]),
    (check_next_fd, a.next_fd_stops_the_process, ["stopped answering", "SIGSTOP"]),
    (check_default_protocol, a.default_protocol_table, ["the kernel says"]),
    (check_default_protocol, a.default_protocol_never_closes, ["never closed", "garbage collector closed them"]),
    (check_default_protocol, a.default_protocol_proto_attribute, ["the kernel says"]),
    # the per-exercise false passes
    (check_remove_if_stale, a.remove_if_stale_unlink_on_any_error, ["a live server with a full accept queue",
                                                                    "EAGAIN"]),
    (check_remove_if_stale, a.remove_if_stale_blocking_probe, ["a live server with a full accept queue"]),
    (check_remove_if_stale, a.remove_if_stale_never_closes_probe, ["never closed"]),
    (check_remove_if_stale, a.remove_if_stale_name_based, ["stale socket file was left in place"]),
    (check_peer_uid, a.peer_uid_struct_from_notebook, ["NameError", "import modules and define helpers inside"]),
    (check_queued_connections, a.queued_connections_decimal, ["hex"]),
    (check_queued_connections, a.queued_connections_hardcoded, ["you returned"]),
    (check_connect_with_deadline, a.connect_with_deadline_sleep_whole, ["after a slot was free"]),
    (check_connect_with_deadline, a.connect_with_deadline_ignores_seconds, ["a queue that stays full, deadline"]),
    (check_connect_with_deadline, a.connect_with_deadline_busy_loop, ["spins instead of waiting"]),
    (check_connect_with_deadline, a.connect_with_deadline_overshoot, ["never sleep past the deadline"]),
    (check_serve_until_stopped, a.serve_until_stopped_idle_timeout, ["counted from the start, not from the last"]),
    (check_serve_until_stopped, a.serve_until_stopped_busy, ["spins instead of waiting"]),
    (check_serve_until_stopped, a.serve_until_stopped_two_then_sleep, ["client 3"]),
    (check_backoff_delays, a.backoff_delays_linear, ["it does not grow by base"]),
    (check_backoff_delays, a.backoff_delays_off_by_one, ["the first bound is base itself"]),
    (check_backoff_delays, a.backoff_delays_jitter_only_capped, ["in every call", "lock-step"]),
    (check_backoff_delays, a.backoff_delays_bimodal, ["full jitter draws uniformly"]),
    (check_backoff_delays, a.backoff_delays_equal_jitter, ["full jitter draws uniformly"]),
    (check_backoff_delays, a.backoff_delays_fixed_seed, ["no fixed seed"]),
    (check_connect_with_retry, a.connect_with_retry_constant, ["double the delay"]),
    (check_connect_with_retry, a.connect_with_retry_linear, ["doubling the delay from base"]),
    (check_connect_with_retry, a.connect_with_retry_leaks, ["socket(s) open when it returned"]),
    (check_connect_with_retry, a.connect_with_retry_raises_first, ["then nobody listened"]),
    (check_serve_one, a.serve_one_two_recvs, ["before the request was complete"]),
    (check_ask, a.ask_two_recvs, ["before the whole reply had come"]),
    (check_ask, a.ask_shut_rdwr, ["SHUT_RDWR"]),
    (check_request_reply, a.request_reply_send_twice, ["the retry came", "only when that wait timed out"]),
    (check_request_reply, a.request_reply_timeout_1_4, ["wait 0.5 s for the reply"]),
    (check_echo_server, a.echo_server_fixed3, ["expected the list of the"]),
    (check_echo_server, a.echo_server_until_bye, ["datagram"]),
    (check_echo_server, a.echo_server_buffer_4096, ["truncated", "65536"]),
    # more, so that every exercise meets at least 8 wrong solutions here and in its own test file
    (check_default_protocol, a.default_protocol_returns_the_type, ["the kernel says"]),
    (check_peer_uid, a.peer_uid_str, ["you returned '"]),
    (check_peer_uid, a.peer_uid_listener_creds, ["your own uid"] if ROOT else ["returned"]),
    (check_queued_connections, a.queued_connections_first_listener, ["you returned"]),
    (check_queued_connections, a.queued_connections_counting_lines, ["established connections"]),
    (check_serve_clients, a.serve_clients_fork_leaves_child, ["left process", "a fork of your function's process"]),
    (check_serve_clients, a.serve_clients_read_until_eof, ["without closing its side", "one recv(1024)"]),
    (check_serve_clients, a.serve_clients_os_exit_at_end, ["ended its own process (exit status 0"]),
    (check_serve_clients, a.serve_clients_three, ["client"]),
    (check_serve_until_stopped, a.serve_until_stopped_leaves_file, ["the socket file is still there"]),
    (check_serve_until_stopped, a.serve_until_stopped_returns_none, ["returned None (NoneType)"]),
    (check_serve_until_stopped, a.serve_until_stopped_polling_no_thread, ["one thread only"]),
    (check_serve_one, a.serve_one_hardcoded_length, ["before the request was complete"]),
    (check_serve_one, a.serve_one_returns_upper, ["return every byte the client sent"]),
    (check_serve_one, a.serve_one_never_closes_listener, ["never closed 1 socket(s)"]),
    (check_ask, a.ask_never_closes, ["never closed 1 socket(s)"]),
    (check_request_reply, a.request_reply_busy_poll, ["spins instead of waiting"]),
    (check_request_reply, a.request_reply_never_closes, ["never closed"]),
    (check_echo_server, a.echo_server_stream_socket, ["no datagram socket appeared"]),
    (check_echo_server, a.echo_server_recv_without_sender, ["got no answer"]),
]

if ROOT:
    CAUGHT.append((check_peer_uid, a.peer_uid_returns_gid, ["the client's gid"]))

ACCEPTED = [
    (check_socket_fds, a.socket_fds_stat_alternative),
    (check_socket_fds, a.socket_fds_pathlib),
    (check_socket_fds, a.socket_fds_lambda),
    (check_next_fd, a.next_fd_set_difference),
    (check_next_fd, a.next_fd_sorted_scan),
    (check_default_protocol, a.default_protocol_try_finally),
    (check_remove_if_stale, a.remove_if_stale_pathlib),
    (check_peer_uid, a.peer_uid_proc_status),
    (check_queued_connections, a.queued_connections_ss),
    (check_backoff_delays, a.backoff_delays_expovariate_free),
    (check_connect_with_retry, a.connect_with_retry_connect_ex),
    (check_serve_one, a.serve_one_makefile),
    (check_ask, a.ask_makefile),
    (check_request_reply, a.request_reply_select),
    (check_request_reply, a.request_reply_connected),
    (check_echo_server, a.echo_server_recvmsg),
    (check_echo_server, a.echo_server_bytearray_buffer),
    (check_default_protocol, a.default_protocol_annotated),
    (check_remove_if_stale, a.remove_if_stale_exists_then_stat),
    (check_peer_uid, a.peer_uid_unsigned),
    (check_queued_connections, a.queued_connections_ss_with_header),
    (check_connect_with_deadline, a.connect_with_deadline_fixed_pause),
    (check_connect_with_deadline, a.connect_with_deadline_one_socket),
    (check_serve_clients, a.serve_clients_socketserver),
    (check_serve_clients, a.serve_clients_thread_per_client),
    (check_serve_until_stopped, a.serve_until_stopped_selector),
    (check_serve_until_stopped, a.serve_until_stopped_self_connect),
    (check_backoff_delays, a.backoff_delays_system_random),
    (check_connect_with_retry, a.connect_with_retry_logging),
    (check_serve_one, a.serve_one_recv_into),
    (check_ask, a.ask_recv_into),
]


@pytest.mark.parametrize(("check", "solution", "phrases"), CAUGHT, ids=[s.__name__ for _, s, _ in CAUGHT])
def test_attack_is_caught(check, solution, phrases):
    report = check(solution)
    assert_caught(report, phrases)
    assert not os.path.exists("/tmp/pwned-by-student")


@pytest.mark.parametrize(("check", "solution"), ACCEPTED,
                         ids=[s.__name__.replace("<lambda>", "lambda") for _, s in ACCEPTED])
def test_correct_alternative_passes(check, solution):
    report = check(solution)
    assert report.passed, repr(report)


def test_printed_output_is_shown_first_and_last_lines():
    text = repr(check_socket_fds(a.socket_fds_prints_a_lot))
    assert "your function printed:" in text and "debug line 0" in text and "debug line 19999" in text
    assert "bytes printed in all" in text
