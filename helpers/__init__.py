"""Socket Lifecycle Lab helpers: drive real processes one socket call at a time and watch them.

    from helpers import Puppet, workspace, stop_all

The map of modules, the pipes between the kernel and a puppet, and the life of one blocking call
are in docs/architecture.md; each module's docstring explains its model. The names below are
imported on first use (PEP 562), so that a puppet process, which imports `helpers.wire`, starts
without loading the notebook's side of the package.
"""

from __future__ import annotations

import importlib
import sys

_HOMES = {
    "PendingCall": "pending", "Puppet": "puppet", "PuppetBusy": "puppet", "PuppetExited": "puppet",
    "RemoteSocket": "remote", "finished": "pending", "puppets": "puppet", "stop_all": "puppet",
    "wait_until": "observe", "wait_until_blocked": "observe", "workspace": "socket_dir",
}
__all__ = sorted(_HOMES)


def lazy_names(package: str, homes: dict[str, str]):
    """`__getattr__` and `__dir__` for a package whose names are imported on first use (PEP 562):
    `homes` maps each name to the submodule that defines it."""
    module = sys.modules[package]

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted([*vars(module), *homes])

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
