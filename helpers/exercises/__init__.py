"""Exercise checkers: each runs the student's function for real, in a child process, and explains.

`runner` runs a function in a fresh process with a timeout; `report` collects the checks; the
topic modules hold one checker per exercise, each named `check_<function the student writes>`.
"""

from helpers.exercises.accepting import check_serve_clients, check_serve_until_stopped
from helpers.exercises.closing import check_ask, check_serve_one
from helpers.exercises.connecting import check_backoff_delays, check_connect_with_retry
from helpers.exercises.creation import check_default_protocol, check_next_fd, check_socket_fds
from helpers.exercises.datagrams import check_echo_server, check_request_reply
from helpers.exercises.naming import check_peer_uid, check_remove_if_stale
from helpers.exercises.queues import check_connect_with_deadline, check_queued_connections
from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, is_stub, run_isolated
from helpers.exercises.serving import check_serve_selector, check_serve_threads

__all__ = [
    "Outcome", "Report", "checker", "is_stub", "run_isolated",
    "check_default_protocol", "check_next_fd", "check_socket_fds",
    "check_ask", "check_serve_one",
    "check_echo_server", "check_request_reply",
    "check_serve_clients", "check_serve_until_stopped",
    "check_backoff_delays", "check_connect_with_retry",
    "check_peer_uid", "check_remove_if_stale",
    "check_connect_with_deadline", "check_queued_connections",
    "check_serve_selector", "check_serve_threads",
]
