"""Plugins are found by name through entry points; `import wool` imports none of them."""

from __future__ import annotations

import pytest

import wool
from tests.core import routines as r


def test_builtin_plugins_resolve_lazily_through_entry_points():
    from wool_discovery_local import LocalDiscovery
    from wool_lb_roundrobin import RoundRobinLoadBalancer

    assert wool.LocalDiscovery is LocalDiscovery
    assert wool.RoundRobinLoadBalancer is RoundRobinLoadBalancer


async def test_pool_finds_discovery_and_loadbalancer_by_name():
    async with wool.WorkerPool(size=1, discovery="local", loadbalancer="roundrobin") as pool:
        assert type(pool.proxy.loadbalancer).__name__ == "RoundRobinLoadBalancer"  # type: ignore[union-attr]
        assert await r.add(2, 2) == 4


async def test_third_party_loadbalancer_is_found_by_name():
    async with wool.WorkerPool(size=2, loadbalancer="fixture-random") as pool:
        assert type(pool.proxy.loadbalancer).__module__.startswith("wool_fixture_plugin")  # type: ignore[union-attr]
        assert [await r.add(i, i) for i in range(5)] == [0, 2, 4, 6, 8]


async def test_unknown_discovery_lists_installed_names():
    with pytest.raises(ValueError, match=r"discovery plugin named 'nope' \(installed: .*'local'"):
        async with wool.WorkerPool(discovery="nope"):
            pass


async def test_unknown_loadbalancer_lists_installed_names():
    with pytest.raises(ValueError, match=r"no load balancer plugin named 'nope'.*'roundrobin'"):
        async with wool.WorkerPool(size=1, loadbalancer="nope"):
            pass
