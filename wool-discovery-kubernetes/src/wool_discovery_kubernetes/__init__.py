"""wool-discovery-kubernetes: discovery of wool workers through the Kubernetes API.

Registered as the ``kubernetes`` entry point of the ``wool.discovery`` group, so
``wool.KubernetesDiscovery`` and ``WorkerPool(discovery="kubernetes")`` resolve to
:class:`KubernetesDiscovery`. No operator and no custom resource: worker pods annotate
themselves, callers list and watch pods.
"""

from __future__ import annotations

from wool_discovery_kubernetes._config import (
    POD_IP_VARIABLE,
    POD_NAME_VARIABLE,
    POD_NAMESPACE_VARIABLE,
    KubernetesConfigError,
)
from wool_discovery_kubernetes._discovery import KubernetesDiscovery
from wool_discovery_kubernetes._publisher import KubernetesPublisher, PublishError
from wool_discovery_kubernetes._records import (
    POOL_LABEL,
    WORKERS_ANNOTATION,
    decode_workers,
    encode_workers,
)
from wool_discovery_kubernetes._subscriber import KubernetesSubscriber

__all__ = [
    "POD_IP_VARIABLE",
    "POD_NAMESPACE_VARIABLE",
    "POD_NAME_VARIABLE",
    "POOL_LABEL",
    "WORKERS_ANNOTATION",
    "KubernetesConfigError",
    "KubernetesDiscovery",
    "KubernetesPublisher",
    "KubernetesSubscriber",
    "PublishError",
    "decode_workers",
    "encode_workers",
]
