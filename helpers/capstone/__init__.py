"""The capstone (09-capstone): the student's own server.py and client.py, attacked by the gauntlet.

    from helpers.capstone import gauntlet
    gauntlet("capstone/server.py", "capstone/client.py")

`protocol` is the gauntlet's own copy of the protocol, `program` runs a student's program as a
process we own, `gauntlet` holds the attacks, `peer` is the attacker that must be a process of its
own, and `framing_check` checks the framing exercise of 07-datagrams.
"""

from helpers.capstone.gauntlet import ATTACKS, Report, gauntlet

__all__ = ["ATTACKS", "Report", "gauntlet"]
