"""Workers that die or hang: callers get an error in bounded time, never a hang; the pool
routes around the dead; discovery forgets them; a hung worker is still stopped."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import wool
from tests.discovery_local.conftest import read_table
from tests.reliability import routines as r
from tests.reliability.support import Rendezvous, is_running, wait_exited

FAULT_SECONDS = 15.0
"""How long a caller may take to learn that its worker died (it is usually immediate)."""

DISCOVERY_SECONDS = 15.0
"""How long discovery may take to drop a dead worker (a pidfd makes it immediate)."""


def worker_pids(pool: wool.WorkerPool) -> set[int]:
    return {w.metadata.pid for w in pool.workers if w.metadata}


async def assert_dropped(pool: wool.WorkerPool, victim: int) -> None:
    """The dead worker leaves the routable set and the namespace's table."""
    assert pool.proxy is not None
    await pool.proxy.wait_until(
        lambda workers: victim not in {m.pid for m in workers}, timeout=DISCOVERY_SECONDS
    )
    _, records = read_table(pool.proxy.subscriber.namespace)
    assert victim not in {record.metadata.pid for record in records}


async def assert_served_by(pids: set[int], calls: int = 6) -> None:
    served = {await r.pid() for _ in range(calls)}
    assert served <= pids and served


async def test_a_worker_killed_mid_coroutine_fails_its_caller_with_worker_lost():
    async with Rendezvous() as rv, wool.WorkerPool(size=2) as pool:
        call = asyncio.ensure_future(r.announce_then_wait(rv.path))
        victim = await rv.next_pid()
        os.kill(victim, signal.SIGKILL)
        async with asyncio.timeout(FAULT_SECONDS):
            with pytest.raises(wool.WorkerLost, match=r"announce_then_wait\(\)"):
                await call
        await assert_dropped(pool, victim)
        await assert_served_by(worker_pids(pool) - {victim})


@pytest.mark.parametrize("when", ["during-a-step", "between-steps"])
async def test_a_worker_killed_mid_stream_fails_the_consumer_with_worker_lost(when: str):
    async with Rendezvous() as rv, wool.WorkerPool(size=2) as pool:
        if when == "during-a-step":
            stream = r.announce_then_stall(rv.path)
            assert await anext(stream) == 0
            pending = asyncio.ensure_future(anext(stream))  # stalls on the worker
            victim = await rv.next_pid()
            os.kill(victim, signal.SIGKILL)
        else:
            stream = r.announce_then_stream(rv.path)
            assert await anext(stream) == 0
            victim = await rv.next_pid()
            os.kill(victim, signal.SIGKILL)
            await wait_exited([victim], FAULT_SECONDS)
            pending = asyncio.ensure_future(anext(stream))  # the generator is suspended
        async with asyncio.timeout(FAULT_SECONDS):
            with pytest.raises(wool.WorkerLost, match="lost worker"):
                await pending
            await stream.aclose()  # closing a stream whose worker is gone does not hang
        await assert_dropped(pool, victim)
        await assert_served_by(worker_pids(pool) - {victim})


async def test_a_worker_killed_while_idle_is_routed_around_and_dropped():
    async with wool.WorkerPool(size=2) as pool:
        assert await r.add(1, 1) == 2  # both sessions are open before the kill
        assert await r.add(1, 1) == 2
        victim = pool.workers[0]
        assert victim.process is not None and victim.metadata is not None
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        # Right away, before discovery has caught up: no caller sees the dead worker.
        async with asyncio.timeout(FAULT_SECONDS):
            served = {await r.pid() for _ in range(10)}
        assert served == worker_pids(pool) - {victim.metadata.pid}
        await assert_dropped(pool, victim.metadata.pid)


async def test_every_worker_killed_gives_no_workers_available_not_a_hang():
    async with wool.WorkerPool(size=2, wait_for_workers=1.0, restart=False) as pool:
        for worker in pool.workers:
            assert worker.process is not None
            worker.process.send_signal(signal.SIGKILL)
        await wait_exited(worker_pids(pool), FAULT_SECONDS)
        async with asyncio.timeout(FAULT_SECONDS):
            with pytest.raises(wool.NoWorkersAvailable):
                await r.add(1, 2)


async def test_a_hung_worker_is_still_stopped_and_the_others_keep_serving():
    grace = 0.5
    async with Rendezvous() as rv:
        pool = wool.WorkerPool(size=2, grace=grace)
        await pool.__aenter__()
        try:
            hung_call = asyncio.ensure_future(r.hang(rv.path, 600))
            hung = await rv.next_pid()
            healthy = worker_pids(pool) - {hung}
            # Calls routed to the hung worker wait (it reads nothing; after the accept timeout
            # they go to the other worker); the others complete.
            calls = [asyncio.ensure_future(r.pid()) for _ in range(8)]
            served = []
            async with asyncio.timeout(FAULT_SECONDS):
                for done in asyncio.as_completed(calls):
                    served.append(await done)
                    if len(served) == 4:
                        break
            assert set(served) == healthy
        finally:
            # Leaving the pool stops the hung worker: it is killed after grace + a margin.
            async with asyncio.timeout(grace + 5.0 + FAULT_SECONDS):
                await pool.__aexit__(None, None, None)
        assert not is_running(hung)
        async with asyncio.timeout(FAULT_SECONDS):
            outcomes = await asyncio.gather(hung_call, *calls, return_exceptions=True)
        # The hung call was accepted and still running when the pool was left.
        assert isinstance(outcomes[0], wool.PoolClosed)
        # The hung worker accepted none of them: each was served, or ended when the pool
        # closed its connections, never with WorkerLost.
        assert all(isinstance(o, (int, wool.NoWorkersAvailable)) for o in outcomes[1:]), outcomes
