"""What a pod, as the API returns it, contributes to a pool: its workers, or nothing."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from wool import WorkerMetadata
from wool_discovery_kubernetes._records import (
    POOL_LABEL,
    WORKERS_ANNOTATION,
    decode_workers,
    host_ip,
)

log = logging.getLogger(__name__)


def pod_name(pod: dict[str, Any]) -> str | None:
    """The pod's name, or ``None`` when the object has none."""
    name = _metadata(pod).get("name")
    return name if isinstance(name, str) and name else None


class Offers:
    """What each pod of a pool offers, by pod name.

    A pod's annotation is decoded (and what is wrong in it logged) only when the
    annotation or the pod's IPs change, not on every status update of the pod.
    """

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self._decoded: dict[str, tuple[object, frozenset[str], dict[str, WorkerMetadata]]] = {}

    def of(self, name: str, pod: dict[str, Any] | None) -> dict[str, WorkerMetadata]:
        """The workers pod ``name`` offers now (``pod`` ``None``: it was deleted).

        Nothing unless the pod carries ``wool.dev/pool: <pool>``, is Ready and is not
        terminating (no ``deletionTimestamp``). Records whose host is not one of the
        pod's IPs are skipped: a pod may only advertise itself.
        """
        if pod is None:
            self._decoded.pop(name, None)
            return {}
        metadata = _metadata(pod)
        labels = metadata.get("labels")
        if not isinstance(labels, dict) or labels.get(POOL_LABEL) != self.pool:
            return {}
        if metadata.get("deletionTimestamp") or not _ready(pod):
            return {}
        annotations = metadata.get("annotations")
        text = annotations.get(WORKERS_ANNOTATION) if isinstance(annotations, dict) else None
        addresses = frozenset(pod_ips(pod))
        known = self._decoded.get(name)
        if known is not None and known[0] == text and known[1] == addresses:
            return known[2]
        workers = _accepted(f"pod {metadata.get('namespace')}/{name}", text, addresses)
        self._decoded[name] = (text, addresses, workers)
        return workers


def _accepted(origin: str, text: object, addresses: frozenset[str]) -> dict[str, WorkerMetadata]:
    if text is None:
        return {}
    accepted: dict[str, WorkerMetadata] = {}
    for uid, worker in decode_workers(text, origin).items():
        if host_ip(worker) not in addresses:
            log.warning(
                "%s: skipping worker %s: its address %s is not an IP of the pod (%s)",
                origin,
                uid,
                worker.address,
                ", ".join(sorted(addresses)) or "none yet",
            )
            continue
        accepted[uid] = worker
    return accepted


def pod_ips(pod: dict[str, Any]) -> set[str]:
    """The pod's IP addresses (``status.podIPs`` and ``status.podIP``), normalised."""
    status = pod.get("status")
    if not isinstance(status, dict):
        return set()
    found: list[object] = [status.get("podIP")]
    entries = status.get("podIPs")
    if isinstance(entries, list):
        found += [entry.get("ip") for entry in entries[:8] if isinstance(entry, dict)]
    addresses: set[str] = set()
    for value in found:
        if isinstance(value, str):
            try:
                addresses.add(str(ipaddress.ip_address(value)))
            except ValueError:
                continue
    return addresses


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def _metadata(pod: dict[str, Any]) -> dict[str, Any]:
    metadata = pod.get("metadata")
    return metadata if isinstance(metadata, dict) else {}
