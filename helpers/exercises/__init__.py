"""Exercise checkers: each runs the student's function for real, in a child process, and explains.

`runner` runs a function in a fresh process with a timeout; `report` collects the checks; the
topic modules hold one checker per exercise, each named `check_<function the student writes>`.

The names below are imported on first use (PEP 562): the sandbox that runs a student's function
is `python -m helpers.exercises.sandbox`, and importing every checker there (puppets, /proc
readers, widgets) cost ~0.2 s of CPU per run, several runs per check.
"""

from __future__ import annotations

from helpers import lazy_names

_HOMES = {
    "Outcome": "runner", "Report": "report", "checker": "report", "is_stub": "runner", "run_isolated": "runner",
    "check_default_protocol": "creation", "check_next_fd": "creation", "check_socket_fds": "creation",
    "check_ask": "closing", "check_serve_one": "closing",
    "check_echo_server": "datagrams", "check_request_reply": "datagrams",
    "check_serve_clients": "accepting", "check_serve_until_stopped": "accepting",
    "check_backoff_delays": "connecting", "check_connect_with_retry": "connecting",
    "check_peer_uid": "naming", "check_remove_if_stale": "naming",
    "check_connect_with_deadline": "queues", "check_queued_connections": "queues",
    "check_serve_selector": "serving", "check_serve_threads": "serving",
}
__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES)
