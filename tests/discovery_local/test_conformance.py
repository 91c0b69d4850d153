"""LocalDiscovery passes wool's discovery conformance kit (wool.testing)."""

from __future__ import annotations

import pytest

import wool.testing
from wool_discovery_local import LocalDiscovery


class TestLocalDiscoveryConformance(wool.testing.DiscoveryConformance):
    @pytest.fixture
    def discovery_factory(self, namespace: str):
        # The `namespace` fixture fails the test if the namespace leaves files behind.
        return lambda: LocalDiscovery(namespace)
