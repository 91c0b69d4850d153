"""wool-discovery-etcd: discovery of wool workers through etcd leases and watches.

Registered as the ``etcd`` entry point of the ``wool.discovery`` group, so
``wool.EtcdDiscovery``, ``WorkerPool(discovery="etcd")`` and
``wool worker --discovery etcd`` resolve to :class:`EtcdDiscovery`.
"""

from __future__ import annotations

from wool_discovery_etcd._discovery import EtcdDiscovery
from wool_discovery_etcd._errors import (
    EtcdAuthError,
    EtcdDiscoveryError,
    EtcdUnavailable,
    IncompatibleNamespace,
)
from wool_discovery_etcd._publisher import EtcdPublisher
from wool_discovery_etcd._settings import (
    DEFAULT_ENDPOINT,
    DEFAULT_TTL,
    ENDPOINTS_VARIABLE,
    EtcdSettings,
)
from wool_discovery_etcd._subscriber import EtcdSubscriber

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_TTL",
    "ENDPOINTS_VARIABLE",
    "EtcdAuthError",
    "EtcdDiscovery",
    "EtcdDiscoveryError",
    "EtcdPublisher",
    "EtcdSettings",
    "EtcdSubscriber",
    "EtcdUnavailable",
    "IncompatibleNamespace",
]
