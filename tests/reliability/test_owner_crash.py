"""The process that owns a pool is SIGKILLed: its workers exit on their own, and the next
pool cleans up what the crash left in LocalDiscovery's directory."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import (
    child_pids,
    namespace_files,
    start_hosted_pool,
    stop_hosted_pool,
    wait_exited,
)

EXIT_SECONDS = 20.0
"""How long orphaned workers may take to notice and exit (it is usually immediate)."""


@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested-dispatch"])
@pytest.mark.parametrize("kind", ["explicit-namespace", "private-namespace"])
async def test_workers_of_a_killed_owner_exit_and_the_next_pool_cleans_up(kind: str, nested: bool):
    explicit = f"crash-{uuid.uuid4().hex[:8]}" if kind == "explicit-namespace" else None
    owner = await asyncio.to_thread(start_hosted_pool, explicit, 2, nested=nested)
    try:
        workers = owner.worker_pids
        assert len(workers) == 2 and set(workers) <= child_pids(owner.process.pid)
        owner.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(owner.process.wait)
    finally:
        stop_hosted_pool(owner.process)

    # The workers see their stdin close, and exit without being told.
    await wait_exited(workers, EXIT_SECONDS)

    if not nested:
        # What the crash left: the owner never detached. (Workers that dispatched nested
        # routines are attached too; the last of them to exit removes the files.)
        assert namespace_files(owner.namespace) != []

    if explicit is not None:
        # The next pool on the same namespace reclaims it.
        async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(explicit)) as pool:
            assert pool.proxy is not None
            assert {m.pid for m in pool.proxy.workers}.isdisjoint(workers)
            assert await r.add(1, 2) == 3
    else:
        # Nobody will use a private namespace again: the next pool sweeps it.
        async with wool.WorkerPool(size=1):
            assert namespace_files(owner.namespace) == []
            assert await r.add(1, 2) == 3
    assert namespace_files(owner.namespace) == []
    # The autouse fixture checks that no process or file of this test is left.
