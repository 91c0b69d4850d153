"""The example plugin's own tests: wool's conformance kit, and the counter on a real pool."""

from __future__ import annotations

import asyncio
import os

import pytest
from wool_plugin_example import AffinityLoadBalancer, outcomes

import wool
import wool.testing


class TestAffinityLoadBalancer(wool.testing.LoadBalancerConformance):
    @pytest.fixture
    def loadbalancer_factory(self):
        return AffinityLoadBalancer


@wool.routine
async def square(x: int) -> int:
    if x < 0:
        raise ValueError("no negative numbers")
    return x * x


@wool.routine
async def pid() -> int:
    return os.getpid()


def test_calls_of_a_routine_stay_on_one_worker_and_outcomes_are_counted():
    async def main() -> tuple[list[int], set[int]]:
        async with wool.WorkerPool(size=3, loadbalancer="example-affinity"):
            squares = [await square(i) for i in range(5)]
            with pytest.raises(ValueError):
                await square(-1)
            return squares, {await pid() for _ in range(5)}

    outcomes.reset()
    squares, pids = asyncio.run(main())
    assert wool.testing.drain_events()
    assert squares == [0, 1, 4, 9, 16]
    assert len(pids) == 1
    assert outcomes.snapshot()["square"] == {"ok": 5, "ValueError": 1}
