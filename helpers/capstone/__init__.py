"""The capstone (09-capstone): the student's own server.py and client.py, attacked by the gauntlet.

    from helpers.capstone import gauntlet
    gauntlet("capstone/server.py", "capstone/client.py")

`protocol` is the gauntlet's own copy of the protocol, `program` runs a student's program as a
process we own, `attacks` holds the attacks and `gauntlet()`, which runs them, `peer` is the
attacker that must be a process of its own, and `framing_check` checks the framing exercise of
07-datagrams.
"""

from __future__ import annotations

import importlib

_HOMES = {"ATTACKS": "attacks", "Report": "attacks", "gauntlet": "attacks"}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    """Imported on first use (PEP 562): the framing exercise's runner and the gauntlet's peer are
    processes of their own under this package, and need none of the gauntlet."""
    if name not in _HOMES:
        raise AttributeError(f"module 'helpers.capstone' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.capstone.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
