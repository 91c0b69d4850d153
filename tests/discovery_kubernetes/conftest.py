"""Fixtures for wool-discovery-kubernetes: a fake API server over real HTTP, a kubeconfig
that points at it, and helpers to read discovery events with a deadline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_kubernetes import KubernetesDiscovery

EVENT_TIMEOUT = 10.0
KUBE_NAMESPACE = "wool"
TOKEN = "test-token-" + uuid.uuid4().hex


def write_kubeconfig(path: Path, server: str, token: str, ca: Path | None = None) -> Path:
    """A kubeconfig with one cluster, one token user and one current context."""
    cluster: dict[str, object] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [
            {
                "name": "fake",
                "context": {"cluster": "fake", "user": "tester", "namespace": KUBE_NAMESPACE},
            }
        ],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI(token=TOKEN).start()
    try:
        yield api
    finally:
        open_watches = api.open_watches()
        api.stop()
    assert open_watches == 0, f"{open_watches} watch streams left open"


@pytest.fixture
def kubeconfig(tmp_path: Path, kube_api: FakeKubeAPI) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", kube_api.url, TOKEN)


@pytest.fixture
def pool() -> str:
    return "pool-" + uuid.uuid4().hex[:10]


def discovery(kubeconfig: Path, pool: str, pod: str = "worker-0") -> KubernetesDiscovery:
    return KubernetesDiscovery(
        pool, kube_namespace=KUBE_NAMESPACE, pod_name=pod, kubeconfig=kubeconfig
    )


def worker(uid: str, address: str = "127.0.0.1:50051", **fields: object) -> WorkerMetadata:
    values: dict[str, object] = {"uid": uid, "address": address, "pid": 4242, "version": "0.16.0"}
    values.update(fields)
    return WorkerMetadata(**values)  # type: ignore[arg-type]


def added(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-added", worker)


def updated(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-updated", worker)


def dropped(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-dropped", worker)


async def next_events(events: AsyncIterator[DiscoveryEvent], count: int) -> set[DiscoveryEvent]:
    """The next ``count`` events, failing after EVENT_TIMEOUT seconds."""
    seen: set[DiscoveryEvent] = set()
    async with asyncio.timeout(EVENT_TIMEOUT):
        for _ in range(count):
            seen.add(await anext(events))
    return seen


async def no_event_until(events: AsyncIterator[DiscoveryEvent], sentinel: DiscoveryEvent) -> None:
    """Read events until ``sentinel``; fail if anything else comes first."""
    async with asyncio.timeout(EVENT_TIMEOUT):
        event = await anext(events)
    assert event == sentinel, f"expected only {sentinel} here, got {event}"
