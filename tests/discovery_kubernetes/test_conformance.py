"""KubernetesDiscovery passes wool's discovery conformance kit (wool.testing), against
the fake API server through the real kubernetes-asyncio client."""

from __future__ import annotations

from pathlib import Path

import pytest

import wool.testing
from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import discovery


class TestKubernetesDiscoveryConformance(wool.testing.DiscoveryConformance):
    @pytest.fixture
    def discovery_factory(self, kube_api: FakeKubeAPI, kubeconfig: Path, pool: str):
        # One dual-stack pod: the kit publishes workers on 127.0.0.1 and [::1].
        kube_api.create_pod("worker-0", ips=("127.0.0.1", "::1"))
        yield lambda: discovery(kubeconfig, pool)
        pod = kube_api.pod("worker-0")
        assert "wool.dev/workers" not in (pod["metadata"].get("annotations") or {})
