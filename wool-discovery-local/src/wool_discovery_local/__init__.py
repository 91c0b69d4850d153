"""wool-discovery-local: shared-memory discovery for single-machine wool worker pools.

Registered as the ``local`` entry point of the ``wool.discovery`` group, so
``wool.LocalDiscovery`` and ``WorkerPool(discovery="local")`` resolve to
:class:`LocalDiscovery`.
"""

from __future__ import annotations

from wool_discovery_local._discovery import LocalDiscovery
from wool_discovery_local._publisher import LocalPublisher
from wool_discovery_local._subscriber import LocalSubscriber

__all__ = ["LocalDiscovery", "LocalPublisher", "LocalSubscriber"]
