"""Durable and Hybrid pools across two OS processes sharing a LocalDiscovery namespace."""

from __future__ import annotations

import uuid

import wool
from tests.core import routines as r
from tests.support.processes import host_pool


def _namespace() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_durable_pool_uses_workers_of_another_process():
    namespace = _namespace()
    async with host_pool(namespace, 2) as remote:
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace)) as pool:
            assert pool.workers == [] and pool.proxy is not None
            await pool.proxy.wait_for([w.uid for w in remote], timeout=10)
            pids = {await r.pid() for _ in range(6)}
            assert await r.fib(8) == 21
    assert pids == {w.pid for w in remote}


async def test_hybrid_pool_uses_its_own_and_the_other_process_workers():
    namespace = _namespace()
    async with host_pool(namespace, 2) as remote:
        async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(namespace)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([w.uid for w in remote], timeout=10)
            own = {w.metadata.pid for w in pool.workers if w.metadata}
            pids = {await r.pid() for _ in range(9)}
    assert pids == {w.pid for w in remote} | own


async def test_tags_select_the_workers_that_carry_them():
    namespace = _namespace()
    async with host_pool(namespace, 2, "gpu-capable") as gpu:
        async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(namespace)):
            async with wool.WorkerPool(
                "gpu-capable", discovery=wool.LocalDiscovery(namespace)
            ) as tagged:
                assert tagged.proxy is not None
                await tagged.proxy.wait_for([w.uid for w in gpu], timeout=10)
                pids = {await r.pid() for _ in range(6)}
                routable = {m.uid for m in tagged.proxy.workers}
    assert pids == {w.pid for w in gpu}
    assert routable == {w.uid for w in gpu}


async def test_workers_of_a_process_that_leaves_are_dropped():
    namespace = _namespace()
    async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(namespace)) as pool:
        assert pool.proxy is not None
        own = {w.metadata.uid for w in pool.workers if w.metadata}
        async with host_pool(namespace, 2) as remote:
            await pool.proxy.wait_for([w.uid for w in remote], timeout=10)
            seen = {await r.pid() for _ in range(9)}
            assert {w.pid for w in remote} <= seen
        await pool.proxy.wait_until(lambda workers: {m.uid for m in workers} == own, timeout=10)
        assert {await r.pid() for _ in range(4)} == {w.metadata.pid for w in pool.workers}
