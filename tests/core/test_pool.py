"""WorkerPool modes, arguments and teardown."""

from __future__ import annotations

import asyncio
import gc
import os

import pytest

import wool
from tests.core import routines as r
from tests.support.directory_discovery import DirectoryDiscovery


async def test_default_mode_spawns_one_worker_per_cpu():
    async with wool.WorkerPool() as pool:
        assert len(pool.workers) == os.cpu_count()
        assert await r.add(1, 2) == 3


async def test_ephemeral_mode_spawns_size_workers_with_tags():
    async with wool.WorkerPool("gpu-capable", "fast", size=3) as pool:
        assert len(pool.workers) == 3
        assert all(w.metadata and w.metadata.tags == {"gpu-capable", "fast"} for w in pool.workers)
        pids = {await r.pid() for _ in range(6)}
        worker_pids = {w.metadata.pid for w in pool.workers if w.metadata}
    assert pids == worker_pids


async def test_workers_listen_on_distinct_unix_sockets_by_default():
    async with wool.WorkerPool(size=2) as pool:
        addresses = [w.metadata.address for w in pool.workers if w.metadata]
        assert await r.fib(6) == 8
    assert all(a.startswith("unix:") for a in addresses)
    assert len(set(addresses)) == 2


async def test_workers_given_a_host_bind_it_on_distinct_ports():
    async with wool.WorkerPool(size=2, host="127.0.0.1") as pool:
        addresses = [w.metadata.address for w in pool.workers if w.metadata]
        assert await r.fib(6) == 8
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    assert len(set(addresses)) == 2


async def test_custom_discovery_by_structural_subtyping(tmp_path):
    discovery = DirectoryDiscovery(tmp_path / "workers")
    async with wool.WorkerPool(size=2, discovery=discovery) as pool:
        assert len(list((tmp_path / "workers").glob("*.json"))) == 2
        assert await r.fib(6) == 8
        assert pool.proxy is not None and len(pool.proxy.workers) == 2
    assert list((tmp_path / "workers").glob("*.json")) == []


async def test_custom_loadbalancer_by_structural_subtyping():
    class FirstWorkerOnly:
        def order(self, task, candidates):
            return candidates[:1]

    async with wool.WorkerPool(size=2, loadbalancer=FirstWorkerOnly()):
        pids = {await r.pid() for _ in range(6)}
    assert len(pids) == 1


def exited(workers) -> list[bool]:
    return [w.process is not None and w.process.returncode is not None for w in workers]


async def test_pool_exit_by_exception_stops_its_workers_and_its_scope():
    with pytest.raises(ZeroDivisionError):
        async with wool.WorkerPool(size=2) as pool:
            workers = list(pool.workers)
            assert await r.add(1, 1) == 2
            assert exited(workers) == [False, False]
            1 / 0  # noqa: B018
    assert exited(workers) == [True, True]
    with pytest.raises(RuntimeError, match="outside a worker pool"):
        await r.add(1, 1)


async def test_pool_exit_by_cancellation_stops_its_workers():
    entered = asyncio.Event()
    workers = []

    async def use_pool():
        async with wool.WorkerPool(size=2) as pool:
            workers.extend(pool.workers)
            entered.set()
            await r.wait_forever("pool-cancel", "pool-cancel-started")

    task = asyncio.ensure_future(use_pool())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(workers) == 2 and exited(workers) == [True, True]


async def test_cancellation_during_startup_stops_the_spawned_workers(tmp_path):
    publishing = asyncio.Event()
    spawned = []

    class StallingPublisher:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc_info):
            pass

        async def publish(self, event):
            if event.type == "worker-added":
                spawned.extend(pool.group.started)  # running, not yet published
                publishing.set()
                await asyncio.Event().wait()

    class StallingDiscovery(DirectoryDiscovery):
        publisher = StallingPublisher()  # type: ignore[assignment]

    pool = wool.WorkerPool(size=2, discovery=StallingDiscovery(tmp_path))
    task = asyncio.ensure_future(pool.__aenter__())
    await publishing.wait()
    assert exited(spawned) == [False, False]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert exited(spawned) == [True, True]
    assert pool.proxy is None


@pytest.mark.parametrize("size", [0, -1, "2", 2.0, True])
def test_invalid_size_is_rejected(size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        wool.WorkerPool(size=size)


@pytest.mark.parametrize("tag", ["", 3, None])
def test_invalid_tags_are_rejected(tag):
    with pytest.raises(TypeError, match="tags must be non-empty strings"):
        wool.WorkerPool(tag)


async def test_object_that_is_not_a_discovery_is_rejected():
    with pytest.raises(TypeError, match="must implement wool.DiscoveryLike"):
        async with wool.WorkerPool(discovery=object()):  # type: ignore[arg-type]
            pass


async def test_object_that_is_not_a_loadbalancer_is_rejected():
    with pytest.raises(TypeError, match="must implement wool.LoadBalancerLike"):
        async with wool.WorkerPool(size=1, loadbalancer=object()):  # type: ignore[arg-type]
            pass


async def test_a_pool_cannot_be_entered_twice():
    pool = wool.WorkerPool(size=1)
    async with pool:
        with pytest.raises(RuntimeError, match="already entered"):
            await pool.__aenter__()


async def test_a_hybrid_pool_listens_on_unix_sockets_with_local_discovery_only(tmp_path):
    """LocalDiscovery's records stay with this user; other discoveries' records carry
    ``host:port``, so their hybrid pools listen on loopback TCP when given no host."""
    local = wool.LocalDiscovery(f"t-{os.getpid()}-hybrid")
    async with wool.WorkerPool(size=1, discovery=local) as pool:
        [worker] = pool.workers
        assert worker.metadata is not None and worker.metadata.address.startswith("unix:/")
        assert await r.add(1, 2) == 3
    async with wool.WorkerPool(size=1, discovery=DirectoryDiscovery(tmp_path / "w")) as pool:
        [worker] = pool.workers
        assert worker.metadata is not None and worker.metadata.address.startswith("127.0.0.1:")
        assert await r.add(1, 2) == 3


async def test_a_finished_call_is_freed_at_once_without_the_cycle_collector():
    # A cycle per call would leave each one for the collector, whose full passes over
    # many pending calls cost more than the calls themselves.
    from wool._caller_connection import RemoteCall

    def calls_alive() -> int:
        return sum(isinstance(o, RemoteCall) for o in gc.get_objects())

    async with wool.WorkerPool(size=2):
        assert await r.add(1, 2) == 3
        gc.collect()
        gc.disable()
        try:
            results = await asyncio.gather(*(r.add(i, 1) for i in range(50)))
            assert await r.add(2, 2) == 4
            assert results == [i + 1 for i in range(50)]
            assert calls_alive() == 0
        finally:
            gc.enable()
