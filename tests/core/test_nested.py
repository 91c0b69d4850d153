"""Routines that call routines: every call is dispatched, none deadlocks."""

from __future__ import annotations

import os

import wool
from tests.core import routines as r


async def test_contract_fib_with_taskgroup():
    async with wool.WorkerPool(size=2):
        assert await r.fib(12) == 144


async def test_every_nested_call_runs_on_a_worker():
    async with wool.WorkerPool(size=2) as pool:
        value, calls, pids = await r.fib_traced(12)
        worker_pids = {w.metadata.pid for w in pool.workers if w.metadata}
    assert value == 144
    assert calls == 465  # fib(12) makes 465 calls in all
    assert os.getpid() not in pids
    assert pids == worker_pids


async def test_call_tree_deeper_and_wider_than_the_worker_count():
    async with wool.WorkerPool(size=1):
        assert await r.fib(14) == 377
