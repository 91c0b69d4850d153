"""wool-discovery-lan: Zeroconf DNS-SD discovery for wool worker pools across a LAN.

Registered as the ``lan`` entry point of the ``wool.discovery`` group, so
``wool.LanDiscovery`` and ``WorkerPool(discovery="lan")`` resolve to
:class:`LanDiscovery`.
"""

from __future__ import annotations

from wool_discovery_lan._discovery import DEFAULT_TTL, LanDiscovery
from wool_discovery_lan._interfaces import ENVIRONMENT_VARIABLE
from wool_discovery_lan._publisher import LanPublisher
from wool_discovery_lan._records import decode_txt, encode_txt
from wool_discovery_lan._subscriber import DEFAULT_SERVICE_TYPE, LanSubscriber

__all__ = [
    "DEFAULT_SERVICE_TYPE",
    "DEFAULT_TTL",
    "ENVIRONMENT_VARIABLE",
    "LanDiscovery",
    "LanPublisher",
    "LanSubscriber",
    "decode_txt",
    "encode_txt",
]
