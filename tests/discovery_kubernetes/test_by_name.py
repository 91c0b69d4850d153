"""The plugin through wool's own doors: ``wool.KubernetesDiscovery`` and
``WorkerPool(discovery="kubernetes")``, configured by the pod's environment only."""

from __future__ import annotations

from pathlib import Path

import pytest

import wool
import wool_discovery_kubernetes
from tests.core import routines as r
from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import KUBE_NAMESPACE
from wool_discovery_kubernetes import (
    POD_NAME_VARIABLE,
    POD_NAMESPACE_VARIABLE,
    POOL_LABEL,
    WORKERS_ANNOTATION,
)


def test_wool_resolves_the_class_through_the_entry_point():
    assert wool.KubernetesDiscovery is wool_discovery_kubernetes.KubernetesDiscovery
    assert "KubernetesDiscovery" in wool.__all__
    assert wool.KubernetesDiscovery().namespace == "default"


async def test_a_pool_by_name_publishes_on_its_pod_and_dispatches(
    kube_api: FakeKubeAPI, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
):
    kube_api.create_pod("worker-0")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv(POD_NAME_VARIABLE, "worker-0")
    monkeypatch.setenv(POD_NAMESPACE_VARIABLE, KUBE_NAMESPACE)
    async with wool.WorkerPool(size=1, discovery="kubernetes"):
        pod = kube_api.pod("worker-0")
        assert pod["metadata"]["labels"][POOL_LABEL] == "default"
        assert '"workers":[{' in pod["metadata"]["annotations"][WORKERS_ANNOTATION]
        assert await r.add(20, 22) == 42
    assert WORKERS_ANNOTATION not in (kube_api.pod("worker-0")["metadata"].get("annotations") or {})
