"""The worker's cache of caller proxies: a proxy a task uses is never stopped, idle ones
beyond the cap (least recently used first) or past their idle time are, and proxies
whose subscribers pickle alike share one discovery subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import wool
from tests.reliability import routines as r
from wool._task import current_proxy
from wool._worker_proxy_cache import ProxyCache
from wool.testing import InProcessWorker, StaticSubscriber


def pickled_proxies(worker: wool.WorkerMetadata, count: int) -> list[bytes]:
    """``count`` distinct caller proxies (as tasks carry them) routing to ``worker``."""
    return [
        wool.CallerProxy(StaticSubscriber([worker]), wool.RoundRobinLoadBalancer()).pickled()
        for _ in range(count)
    ]


@contextlib.contextmanager
def dispatching_through(proxy: wool.CallerProxy) -> Iterator[None]:
    token = current_proxy.set(proxy)
    try:
        yield
    finally:
        current_proxy.reset(token)


async def test_a_proxy_in_use_survives_eviction_pressure_and_idle_ones_are_stopped():
    async with InProcessWorker() as worker:
        cache = ProxyCache(size=1, idle_seconds=3600)
        first, second, third = pickled_proxies(worker, 3)
        try:
            in_use = cache.acquire(first)  # a task that came with it is running
            with dispatching_through(in_use):
                assert await r.add(1, 2) == 3
            idle = []
            for data in (second, third):
                proxy = cache.acquire(data)
                with dispatching_through(proxy):
                    assert await r.add(2, 2) == 4
                cache.release(data)
                idle.append(proxy)
            # Two idle proxies, one allowed: the least recently used idle one is stopped;
            # the one in use, though least recently used of all, is kept and still works.
            assert len(cache) == 2
            await cache.stopped()
            assert not idle[0].workers and idle[1].workers
            with dispatching_through(in_use):
                assert await r.add(3, 4) == 7
            cache.release(first)
            assert len(cache) == 1  # now idle and the oldest: stopped
            await cache.stopped()
            assert not in_use.workers
            # Every proxy listened to the same one subscription.
            assert cache.subscriptions.active == 1
        finally:
            await cache.close()
        assert cache.subscriptions.active == 0
        assert not idle[1].workers


async def test_an_idle_proxy_is_stopped_after_its_idle_time():
    async with InProcessWorker() as worker:
        cache = ProxyCache(size=10, idle_seconds=0)
        (data,) = pickled_proxies(worker, 1)
        try:
            proxy = cache.acquire(data)
            with dispatching_through(proxy):
                assert await r.add(1, 1) == 2
            cache.release(data)
            assert len(cache) == 0
            await cache.stopped()
            assert not proxy.workers
            # A task that comes with it again gets a fresh copy that works.
            again = cache.acquire(data)
            assert again is not proxy
            with dispatching_through(again):
                assert await r.add(2, 1) == 3
            cache.release(data)
        finally:
            await cache.close()


async def test_proxies_that_go_idle_one_after_another_are_each_stopped_in_their_time():
    async with InProcessWorker() as worker:
        cache = ProxyCache(size=10, idle_seconds=0.2)
        first, second = pickled_proxies(worker, 2)
        stopped: list[wool.CallerProxy] = []
        both_stopped = asyncio.Event()
        stop = cache._stop

        def stop_and_count(proxy: wool.CallerProxy) -> None:
            stopped.append(proxy)
            stop(proxy)
            if len(stopped) == 2:
                both_stopped.set()

        cache._stop = stop_and_count  # type: ignore[method-assign]
        try:
            proxies = [cache.acquire(first), cache.acquire(second)]
            cache.release(first)  # due first: the sweep is set for it
            with dispatching_through(proxies[1]):
                assert await r.add(1, 1) == 2
            cache.release(second)  # due later: the same sweep, when it runs, sets the next
            assert len(cache) == 2
            async with asyncio.timeout(10):
                await both_stopped.wait()
                await cache.stopped()
            assert stopped == proxies and len(cache) == 0
            assert not proxies[0].workers and not proxies[1].workers
        finally:
            await cache.close()
