"""Load in the fast suite: a burst of 10,000 concurrent calls, and pools opened and closed
in a loop. Nothing grows: descriptors, threads, processes and files come back to where
they were. (The soak, ``nox -s soak``, does the same at scale.)"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import ProcessStats, child_pids

BURST = 10_000
POOLS = 48
FD_MARGIN = 5
THREAD_MARGIN = 2


def stats_of(pids: list[int]) -> dict[int, ProcessStats]:
    return {pid: ProcessStats.of(pid) for pid in pids}


@pytest.mark.parametrize("max_in_flight", [10_000, 500])
async def test_ten_thousand_concurrent_calls_complete_without_exhausting_descriptors(
    max_in_flight: int,
):
    me = os.getpid()
    async with wool.WorkerPool(size=2, max_in_flight=max_in_flight) as pool:
        assert pool.proxy is not None
        proxy = pool.proxy
        workers = [w.metadata.pid for w in pool.workers if w.metadata]
        assert sum(await asyncio.gather(*(r.add(i, 1) for i in range(200)))) == 20_100
        before = stats_of([me, *workers])
        peak = {"in_flight": 0, "fds": 0}

        async def call(i: int) -> int:
            result = await r.add(i, 1)
            peak["in_flight"] = max(peak["in_flight"], proxy.in_flight)
            if i % 500 == 0:
                peak["fds"] = max(peak["fds"], ProcessStats.of(me).fds)
            return result

        async with asyncio.timeout(120):
            results = await asyncio.gather(*(call(i) for i in range(BURST)))
        after = stats_of([me, *workers])
    assert results == [i + 1 for i in range(BURST)]
    print(f"\nburst of {BURST}: peak in flight {peak['in_flight']}, peak fds {peak['fds']}")
    assert 0 < peak["in_flight"] <= max_in_flight
    assert peak["fds"] <= before[me].fds + FD_MARGIN
    for pid in before:
        assert after[pid].fds - before[pid].fds <= FD_MARGIN, (pid, before, after)
        assert after[pid].threads - before[pid].threads <= THREAD_MARGIN, (before, after)


KINDS = ("ephemeral", "durable", "hybrid", "durable")
"""Half the pools spawn a worker (ephemeral, hybrid); half only join a namespace."""


async def test_pools_opened_and_closed_in_a_loop_leave_nothing_behind():
    me = os.getpid()
    shared = f"loop-{uuid.uuid4().hex[:8]}"

    async def one_pool(i: int) -> None:
        kind = KINDS[i % len(KINDS)]
        if kind == "ephemeral":
            pool = wool.WorkerPool(size=1)
        elif kind == "hybrid":
            pool = wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(shared))
        else:
            pool = wool.WorkerPool(discovery=wool.LocalDiscovery(shared))
        async with pool:
            assert await r.add(i, 1) == i + 1

    async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(shared)):
        for warm_up in range(-len(KINDS), 0):  # loads modules, starts gRPC's threads
            await one_pool(warm_up)
        before = ProcessStats.of(me)
        children = child_pids()
        slots = asyncio.Semaphore(4)

        async def limited(i: int) -> None:
            async with slots:
                await one_pool(i)

        async with asyncio.timeout(300):
            await asyncio.gather(*(limited(i) for i in range(POOLS)))
        after = ProcessStats.of(me)
        assert child_pids() == children
    print(
        f"\n{POOLS} pools: fds {before.fds} -> {after.fds}, threads {before.threads} -> "
        f"{after.threads}, rss {before.rss_kib} -> {after.rss_kib} KiB"
    )
    assert after.fds - before.fds <= FD_MARGIN, (before, after)
    assert after.threads - before.threads <= THREAD_MARGIN, (before, after)
    # The autouse fixture checks that no process or LocalDiscovery file is left.
