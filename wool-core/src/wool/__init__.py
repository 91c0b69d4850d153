# pyright: reportUnsupportedDunderAll=false
"""wool: run async functions and async generators on a pool of worker processes.

The public API is what ``__all__`` names, and the modules ``wool.plugins`` (for plugin
authors) and ``wool.testing`` (imported explicitly). ``LocalDiscovery``, ``LanDiscovery``,
``EtcdDiscovery``, ``KubernetesDiscovery``, ``RoundRobinLoadBalancer`` and
``LeastBusyLoadBalancer`` come from plugin distributions, found through entry points the
first time they are used.
"""

from __future__ import annotations

from typing import Any

from wool import _plugins
from wool import plugins as plugins
from wool._caller_candidates import Candidate
from wool._caller_connection import CallerConnection, RemoteCall
from wool._caller_proxy import CallerProxy
from wool._context_vars import ContextVar
from wool._credentials import WorkerCredentials
from wool._errors import (
    DispatchError,
    NoWorkersAvailable,
    PoolClosed,
    RemoteTaskError,
    TaskException,
    TransientDispatchError,
    WorkerLost,
)
from wool._events import TaskEvent
from wool._hooks import hookimpl, hookspec
from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._plugins import PluginNotFound
from wool._pool import WorkerPool
from wool._prefetch import prefetch
from wool._protocols import (
    DiscoveryLike,
    DiscoveryPublisherLike,
    DiscoverySubscriberLike,
    LoadBalancerLike,
)
from wool._routine import routine
from wool._task import Task
from wool._version import version as __version__

_LAZY_PLUGINS = {
    "LocalDiscovery": (_plugins.DISCOVERY_GROUP, "local"),
    "LanDiscovery": (_plugins.DISCOVERY_GROUP, "lan"),
    "EtcdDiscovery": (_plugins.DISCOVERY_GROUP, "etcd"),
    "KubernetesDiscovery": (_plugins.DISCOVERY_GROUP, "kubernetes"),
    "RoundRobinLoadBalancer": (_plugins.LOADBALANCER_GROUP, "roundrobin"),
    "LeastBusyLoadBalancer": (_plugins.LOADBALANCER_GROUP, "leastbusy"),
}


def __getattr__(name: str) -> Any:
    """Resolve the built-in plugin classes lazily through their entry points."""
    if name in _LAZY_PLUGINS:
        group, plugin = _LAZY_PLUGINS[name]
        try:
            value = _plugins.load(group, plugin)
        except PluginNotFound as exc:
            raise ImportError(f"wool.{name} is not available: {exc}", name=name) from None
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wool' has no attribute {name!r}")


__all__ = [
    "CallerConnection",
    "CallerProxy",
    "Candidate",
    "ContextVar",
    "DiscoveryEvent",
    "DiscoveryLike",
    "DiscoveryPublisherLike",
    "DiscoverySubscriberLike",
    "DispatchError",
    "EtcdDiscovery",
    "KubernetesDiscovery",
    "LanDiscovery",
    "LeastBusyLoadBalancer",
    "LoadBalancerLike",
    "LocalDiscovery",
    "NoWorkersAvailable",
    "PluginNotFound",
    "PoolClosed",
    "RemoteCall",
    "RemoteTaskError",
    "RoundRobinLoadBalancer",
    "Task",
    "TaskEvent",
    "TaskException",
    "TransientDispatchError",
    "WorkerCredentials",
    "WorkerLost",
    "WorkerMetadata",
    "WorkerPool",
    "__version__",
    "hookimpl",
    "hookspec",
    "prefetch",
    "routine",
]
