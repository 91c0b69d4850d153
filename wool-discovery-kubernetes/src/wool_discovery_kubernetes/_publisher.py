"""The publisher: lists this pod's workers in an annotation on the pod itself."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from typing import Any, NamedTuple

import aiohttp
from kubernetes_asyncio import client

from wool import DiscoveryEvent, WorkerMetadata
from wool.plugins import DiscoveryPublisher
from wool_discovery_kubernetes._config import (
    POD_IP_VARIABLE,
    api_client,
    pod_name,
    resolve_namespace,
)
from wool_discovery_kubernetes._raw import raw
from wool_discovery_kubernetes._records import (
    POOL_LABEL,
    WORKERS_ANNOTATION,
    encode_workers,
    host_ip,
)

log = logging.getLogger(__name__)

PATCH_TIMEOUT = 10.0
"""Seconds one patch of the pod may take."""
RETRY_PAUSES = (0.2, 0.5, 1.0)
"""Pauses before trying a patch again after a 429, a 5xx or a broken connection."""


class PublishError(RuntimeError):
    """The API server refused or failed a patch of the publisher's pod."""


class _Pod(NamedTuple):
    """The connection to the API server and the (namespace, name) of the pod patched."""

    api: client.ApiClient
    target: tuple[str, str]


class KubernetesPublisher(DiscoveryPublisher[_Pod]):
    """Publishes workers on this process's pod; use as ``async with publisher as p``.

    Entering connects to the API (in-cluster or through the kubeconfig) and merge-patches
    the pod named ``pod_name`` (``WOOL_POD_NAME`` by default): it sets the label
    ``wool.dev/pool: <pool>`` and an empty ``wool.dev/workers`` annotation, replacing
    whatever a previous container of the pod left there. Each event rewrites the
    annotation with the current workers (``worker-added`` and ``worker-updated`` put the
    worker's record, ``worker-dropped`` removes it). Leaving removes the annotation and
    closes the connection. Subscribers only count the workers of a Ready pod that is not
    terminating, and only those whose address is an IP of the pod.
    """

    def __init__(
        self,
        pool: str,
        pod_name: str | None,
        kube_namespace: str | None,
        kubeconfig: str | None,
        context: str | None,
    ) -> None:
        self.pool = pool
        self.pod_name = pod_name
        self.kube_namespace = kube_namespace
        self.kubeconfig = kubeconfig
        self.context = context
        self._workers: dict[str, WorkerMetadata] = {}
        self._lock = asyncio.Lock()

    async def _open(self) -> _Pod:
        name = pod_name(self.pod_name)
        namespace = resolve_namespace(self.kube_namespace, self.kubeconfig, self.context)
        api = await api_client(self.kubeconfig, self.context)
        self._workers = {}
        try:
            await _patch(api, namespace, name, self._body(encode_workers(())))
        except BaseException:
            await api.close()
            raise
        self._lock = asyncio.Lock()
        return _Pod(api, (namespace, name))

    async def _close(self, pod: _Pod) -> None:
        self._workers = {}
        try:
            annotations = {"annotations": {WORKERS_ANNOTATION: None}}
            await _patch(pod.api, *pod.target, {"metadata": annotations})
        except (PublishError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("could not withdraw the workers of pod %s/%s: %s", *pod.target, error)
        finally:
            await pod.api.close()

    async def _apply(self, pod: _Pod, event: DiscoveryEvent) -> None:
        """Put or remove the worker of ``event`` in the pod's annotation.

        Raises ``ValueError`` when the annotation would exceed what subscribers read, and
        :class:`PublishError` when the API server refuses the patch.
        """
        async with self._lock:
            workers = dict(self._workers)
            if event.type == "worker-dropped":
                workers.pop(event.metadata.uid, None)
            else:
                _warn_if_foreign(event.metadata, pod.target)
                workers[event.metadata.uid] = event.metadata
            text = encode_workers(workers.values())  # ValueError before any I/O
            await _patch(pod.api, *pod.target, self._body(text))
            self._workers = workers

    def _body(self, annotation: str) -> dict[str, object]:
        return {
            "metadata": {
                "labels": {POOL_LABEL: self.pool},
                "annotations": {WORKERS_ANNOTATION: annotation},
            }
        }

    def __repr__(self) -> str:
        pod = self._opened
        where = "idle" if pod is None else "pod {}/{}".format(*pod.target)
        return f"KubernetesPublisher({self.pool!r}, {where}, {len(self._workers)} workers)"


def _warn_if_foreign(worker: WorkerMetadata, target: tuple[str, str]) -> None:
    own = os.environ.get(POD_IP_VARIABLE, "")
    try:
        own = str(ipaddress.ip_address(own))
    except ValueError:
        return
    if host_ip(worker) != own:
        log.warning(
            "worker %s advertises %s, not the pod's IP %s (%s): subscribers will skip it; "
            "advertise the pod IP (wool worker --advertise $(%s))",
            worker.uid,
            worker.address,
            own,
            "pod {}/{}".format(*target),
            POD_IP_VARIABLE,
        )


async def _patch(api: client.ApiClient, namespace: str, name: str, body: dict[str, object]) -> None:
    """Merge-patch the pod, trying again (briefly) when the API server is busy or
    unreachable; :class:`PublishError` when it refuses."""
    for attempt, pause in enumerate((*RETRY_PAUSES, None)):
        try:
            await _patch_once(api, namespace, name, body)
            return
        except aiohttp.ClientSSLError as exc:  # not worth another try
            raise PublishError(
                f"cannot patch pod {namespace}/{name}: TLS with the API server failed ({exc}); "
                "check the cluster CA (the service account's ca.crt, or the kubeconfig's "
                "certificate-authority)"
            ) from None
        except (_Busy, aiohttp.ClientConnectionError) as exc:
            if pause is None:
                raise PublishError(f"cannot patch pod {namespace}/{name}: {exc}") from None
            log.info("patching pod %s/%s (attempt %d): %s", namespace, name, attempt + 1, exc)
            await asyncio.sleep(pause)


class _Busy(Exception):
    """The API server answered 429 or 5xx: worth another try."""


async def _patch_once(
    api: client.ApiClient, namespace: str, name: str, body: dict[str, object]
) -> None:
    # the client's signature omits _content_type, which selects the patch format
    options: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
    response = await raw(
        client.CoreV1Api(api).patch_namespaced_pod(
            name,
            namespace,
            body,
            _preload_content=False,
            _request_timeout=PATCH_TIMEOUT,
            **options,
        )
    )
    try:
        if not 200 <= response.status < 300:
            detail = (await response.text())[:500]
            if response.status == 429 or response.status >= 500:
                raise _Busy(f"HTTP {response.status} {response.reason}: {detail}")
            hint = ""
            if response.status in (401, 403):
                hint = "; the pod's service account needs a Role allowing patch on pods"
            elif response.status == 404:
                hint = "; is WOOL_POD_NAME/WOOL_POD_NAMESPACE this pod's name and namespace?"
            raise PublishError(
                f"cannot patch pod {namespace}/{name}: HTTP {response.status} "
                f"{response.reason}{hint}: {detail}"
            )
    finally:
        response.release()
