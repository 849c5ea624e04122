"""Socket Lifecycle Lab helpers: drive real processes one socket call at a time and watch them.

    from helpers import Puppet, workspace, explain

See DESIGN.md of the course for the map of modules; each module's docstring explains its model.
"""

from helpers.explain import explain
from helpers.observe import snapshot, wait_until, wait_until_blocked
from helpers.puppet import PendingCall, Puppet, PuppetBusy, PuppetExited, RemoteSocket, finished, puppets, stop_all
from helpers.workspace import workspace

__all__ = [
    "PendingCall", "Puppet", "PuppetBusy", "PuppetExited", "RemoteSocket", "explain", "finished", "puppets",
    "snapshot", "stop_all", "wait_until", "wait_until_blocked", "workspace",
]
