"""The subscriber: follows the pool's pods and turns their annotations into worker events."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import attrs
from kubernetes_asyncio import client

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_kubernetes._config import api_client, resolve_namespace
from wool_discovery_kubernetes._pods import Offers
from wool_discovery_kubernetes._records import POOL_LABEL, validate_pool
from wool_discovery_kubernetes._watch import PodWatch

log = logging.getLogger(__name__)


def _pool(_: object, __: object, value: str) -> None:
    validate_pool(value)


@attrs.frozen
class KubernetesSubscriber:
    """Delivers the workers of the pods labelled ``wool.dev/pool: <pool>``; picklable.

    It holds settings only. Each ``aiter()`` connects on its first step (in-cluster or
    through the kubeconfig, resolved where it runs), lists the pool's pods in the
    Kubernetes namespace and yields ``worker-added`` for the workers of each pod that is
    Ready and not terminating; then it watches the pods and yields ``worker-added``,
    ``worker-updated`` and ``worker-dropped`` as pods become ready, change their
    annotation, stop being ready, start terminating or are deleted. ``aclose()`` closes
    the connection.

    ``kube_namespace`` ``None`` means ``WOOL_POD_NAMESPACE``, else the service
    account's namespace in a cluster, else the kubeconfig context's namespace, else
    ``default``.
    """

    pool: str = attrs.field(default="default", validator=_pool)
    kube_namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None

    def __aiter__(self) -> AsyncGenerator[DiscoveryEvent, None]:
        return _follow(self)


async def _follow(subscriber: KubernetesSubscriber) -> AsyncGenerator[DiscoveryEvent, None]:
    namespace = resolve_namespace(
        subscriber.kube_namespace, subscriber.kubeconfig, subscriber.context
    )
    api = await api_client(subscriber.kubeconfig, subscriber.context)
    try:
        watch = PodWatch(client.CoreV1Api(api), namespace, f"{POOL_LABEL}={subscriber.pool}")
        offers, workers = Offers(subscriber.pool), _Workers()
        async for changed in watch.changes():
            for name in changed:
                workers.offer(name, offers.of(name, watch.pods.get(name)))
            for event in workers.events():
                yield event
    finally:
        await api.close()


class _Workers:
    """The workers each pod offers, and those announced to the subscriber's reader."""

    def __init__(self) -> None:
        self.offers: dict[str, dict[str, WorkerMetadata]] = {}
        self.announced: dict[str, tuple[str, WorkerMetadata]] = {}  # uid -> (pod, worker)

    def offer(self, pod: str, workers: dict[str, WorkerMetadata]) -> None:
        """Record what ``pod`` offers now (nothing when it went away or is not ready)."""
        if workers:
            self.offers[pod] = workers
        else:
            self.offers.pop(pod, None)

    def events(self) -> list[DiscoveryEvent]:
        """The events that bring the announced workers in line with the offers."""
        wanted: dict[str, tuple[str, WorkerMetadata]] = {}
        for uid, (pod, _) in self.announced.items():
            worker = self.offers.get(pod, {}).get(uid)
            if worker is not None:
                wanted[uid] = (pod, worker)  # the pod that announced a uid keeps it
        for pod in sorted(self.offers):
            for uid, worker in self.offers[pod].items():
                owner = wanted.setdefault(uid, (pod, worker))[0]
                if owner != pod:
                    log.debug("pod %s offers worker %s, already offered by pod %s", pod, uid, owner)
        events = [
            DiscoveryEvent("worker-dropped", worker)
            for uid, (_, worker) in self.announced.items()
            if uid not in wanted
        ]
        for uid, (_, worker) in wanted.items():
            before = self.announced.get(uid)
            if before is None:
                events.append(DiscoveryEvent("worker-added", worker))
            elif before[1] != worker:
                events.append(DiscoveryEvent("worker-updated", worker))
        self.announced = wanted
        return events
