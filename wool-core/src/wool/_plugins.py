"""Finding discovery and load-balancer plugins by name, through entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

DISCOVERY_GROUP = "wool.discovery"
LOADBALANCER_GROUP = "wool.loadbalancer"

_INSTALL_HINTS = {
    (DISCOVERY_GROUP, "local"): "pip install wool-discovery-local",
    (DISCOVERY_GROUP, "lan"): "pip install 'wool[lan]'",
    (DISCOVERY_GROUP, "etcd"): "pip install 'wool[etcd]'",
    (DISCOVERY_GROUP, "kubernetes"): "pip install 'wool[kubernetes]'",
    (LOADBALANCER_GROUP, "roundrobin"): "pip install wool-lb-roundrobin",
}

_KIND = {DISCOVERY_GROUP: "discovery", LOADBALANCER_GROUP: "load balancer"}


class PluginNotFound(ValueError):
    """No installed distribution provides a plugin of that name."""


def installed(group: str) -> list[str]:
    """The names registered in an entry-point group, sorted."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str, name: str) -> Any:
    """The object an entry point names; ``PluginNotFound`` lists what is installed."""
    for entry_point in entry_points(group=group):
        if entry_point.name == name:
            return entry_point.load()
    names = ", ".join(repr(n) for n in installed(group)) or "none"
    message = f"no {_KIND.get(group, group)} plugin named {name!r} (installed: {names})"
    hint = _INSTALL_HINTS.get((group, name))
    if hint:
        message += f"; install it with: {hint}"
    raise PluginNotFound(message)
