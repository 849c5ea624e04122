"""The capstone (09-capstone): the student's own server.py and client.py, attacked by the gauntlet.

    from helpers.capstone import gauntlet
    gauntlet("capstone/server.py", "capstone/client.py")

`protocol` is the gauntlet's own copy of the protocol, `program` runs a student's program as a
process we own, `attacks` holds the attacks and `gauntlet()`, which runs them, `peer` is the
attacker that must be a process of its own, and `framing_check` checks the framing exercise of
07-datagrams. The names are imported on first use (PEP 562): the framing exercise's runner and the
gauntlet's peer are processes of their own under this package, and need none of the gauntlet.
"""

from __future__ import annotations

from helpers import lazy_names

_HOMES = {"ATTACKS": "attacks", "Report": "attacks", "gauntlet": "attacks"}
__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES)
