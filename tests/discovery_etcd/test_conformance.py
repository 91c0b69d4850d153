"""EtcdDiscovery passes wool's discovery conformance kit (wool.testing), on a real etcd."""

from __future__ import annotations

import pytest

import wool.testing
from tests.discovery_etcd._etcd import EtcdServer
from wool_discovery_etcd import EtcdDiscovery


class TestEtcdDiscoveryConformance(wool.testing.DiscoveryConformance):
    @pytest.fixture
    def discovery_factory(self, etcd: EtcdServer, namespace: str):
        # The `namespace` fixture fails the test if worker records remain in etcd.
        return lambda: EtcdDiscovery(namespace, endpoints=[etcd.endpoint])
