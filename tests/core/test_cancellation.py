"""Cancelling the caller cancels the remote task; its finally runs; the worker stays healthy."""

from __future__ import annotations

import asyncio

import pytest

import wool
from tests.core import routines as r


async def test_cancelling_the_await_cancels_the_remote_task():
    async with wool.WorkerPool(size=1):
        call = asyncio.ensure_future(r.wait_forever("cancelled", "started"))
        assert await r.finally_ran("started")  # the remote task is running now
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await r.finally_ran("cancelled")
        assert await r.add(20, 22) == 42


async def test_timeout_around_a_routine_cancels_it_remotely():
    async with wool.WorkerPool(size=1):
        timeouts: list[asyncio.Timeout] = []

        async def timed() -> None:
            async with asyncio.timeout(None) as timeout:
                timeouts.append(timeout)
                await r.wait_forever("timed-out", "timed-out-started")

        call = asyncio.ensure_future(timed())
        # Expire the timeout once the routine runs (a call cancelled before its worker
        # started it never starts, and has no finally to run).
        assert await r.finally_ran("timed-out-started")
        timeouts[0].reschedule(asyncio.get_running_loop().time())
        with pytest.raises(TimeoutError):
            await call
        assert await r.finally_ran("timed-out")


async def test_cancelling_a_generator_mid_step_closes_it_remotely():
    async with wool.WorkerPool(size=1):
        stream = r.stalls_on_second_step("gen-cancelled", "gen-step-started")
        assert await anext(stream) == 0
        step = asyncio.ensure_future(anext(stream))
        assert await r.finally_ran("gen-step-started")
        step.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step
        assert await r.finally_ran("gen-cancelled")
        assert [i async for i in r.count_up(3)] == [0, 1, 2]


async def test_cancelling_a_consumer_parked_between_steps_closes_the_generator():
    async with wool.WorkerPool(size=1):
        first = asyncio.Event()

        async def consume():
            async for _ in r.endless("parked"):
                first.set()
                await asyncio.Event().wait()

        consumer = asyncio.ensure_future(consume())
        await first.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await r.finally_ran("parked")
