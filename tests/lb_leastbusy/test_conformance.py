"""LeastBusyLoadBalancer passes wool's load-balancer conformance kit (wool.testing)."""

from __future__ import annotations

import pytest

import wool.testing
from wool_lb_leastbusy import LeastBusyLoadBalancer


class TestLeastBusyConformance(wool.testing.LoadBalancerConformance):
    @pytest.fixture
    def loadbalancer_factory(self):
        return LeastBusyLoadBalancer
