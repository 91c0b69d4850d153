"""LanDiscovery passes wool's discovery conformance kit (wool.testing), inside a
loopback-only network namespace."""

from __future__ import annotations

import pytest

import wool.testing
from tests.support import netns
from wool_discovery_lan import LanDiscovery


class TestLanDiscoveryConformance(wool.testing.DiscoveryConformance):
    @pytest.fixture
    def discovery_factory(self, lan: netns.Namespace):
        # `lan` runs the test (and the event loop of each check) inside a namespace of its
        # own, with only `lo`: that namespace is the medium.
        return lambda: LanDiscovery(["lo"])
