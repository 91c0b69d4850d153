"""RoundRobinLoadBalancer against real workers, real faults and rogue gRPC servers."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
import pytest

import wool
from tests.core import routines as r
from tests.support.directory_discovery import DirectoryDiscovery
from tests.support.rogue import RogueWorker
from wool_lb_roundrobin import RoundRobinLoadBalancer


async def test_tasks_cycle_through_the_workers():
    async with wool.WorkerPool(size=3, loadbalancer=RoundRobinLoadBalancer()):
        pids = [await r.pid() for _ in range(6)]
    assert len(set(pids[:3])) == 3
    assert pids[3:] == pids[:3]


async def test_a_worker_killed_while_idle_is_routed_around():
    async with wool.WorkerPool(size=2) as pool:
        victim = pool.workers[0]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        pids = [await r.pid() for _ in range(10)]
    assert victim.process.pid not in pids
    assert len(pids) == 10


async def test_a_worker_killed_mid_task_fails_the_caller_not_hangs():
    async with wool.WorkerPool(size=2):
        stream = r.pid_then_stall()
        victim = await anext(stream)
        step = asyncio.ensure_future(anext(stream))
        os.kill(victim, signal.SIGKILL)
        async with asyncio.timeout(10):
            with pytest.raises(wool.WorkerLost, match="lost worker"):
                await step
        assert {await r.pid() for _ in range(4)} - {victim}


async def test_no_workers_available_once_all_are_dead():
    async with wool.WorkerPool(size=2, wait_for_workers=1.0, restart=False) as pool:
        for worker in pool.workers:
            assert worker.process is not None
            worker.process.send_signal(signal.SIGKILL)
            await worker.process.wait()
        async with asyncio.timeout(15):
            with pytest.raises(wool.NoWorkersAvailable):
                await r.add(1, 2)


@pytest.mark.parametrize(
    ("code", "evicted"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, True),
        (grpc.StatusCode.FAILED_PRECONDITION, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, False),
        (grpc.StatusCode.UNAVAILABLE, False),
    ],
)
async def test_transient_failures_skip_and_others_evict(tmp_path, code, evicted):
    discovery = DirectoryDiscovery(tmp_path / "workers")
    async with RogueWorker(code, "rogue") as rogue_metadata:
        async with discovery.publisher as publisher:
            await publisher.publish(wool.DiscoveryEvent("worker-added", rogue_metadata))
            async with wool.WorkerPool(size=1, discovery=discovery) as pool:
                assert pool.proxy is not None
                await pool.proxy.wait_for(["rogue"], timeout=10)
                results = [await r.add(i, 1) for i in range(4)]
                uids = {m.uid for m in pool.proxy.workers}
    assert results == [1, 2, 3, 4]
    assert ("rogue" not in uids) == evicted


async def test_every_worker_failing_raises_no_workers_available(tmp_path):
    discovery = DirectoryDiscovery(tmp_path / "workers")
    async with RogueWorker(grpc.StatusCode.UNAVAILABLE, "rogue-a") as a:
        async with RogueWorker(grpc.StatusCode.INTERNAL, "rogue-b") as b:
            async with discovery.publisher as publisher:
                for metadata in (a, b):
                    await publisher.publish(wool.DiscoveryEvent("worker-added", metadata))
                async with wool.WorkerPool(discovery=discovery) as pool:
                    assert pool.proxy is not None
                    await pool.proxy.wait_for(["rogue-a", "rogue-b"], timeout=10)
                    with pytest.raises(wool.NoWorkersAvailable, match="after trying 2") as info:
                        await r.add(1, 2)
    message = str(info.value)
    assert "rogue-a" in message and "rogue-b" in message


def test_balancer_pickles_without_its_position():
    import pickle

    balancer = RoundRobinLoadBalancer()
    balancer._next = 5
    assert pickle.loads(pickle.dumps(balancer))._next == 0
