"""wool.prefetch: a generator routine's items read ahead, in order, a bounded number ahead."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import wool
from tests.core import routines as r


async def test_items_arrive_in_order():
    async with wool.WorkerPool(size=2):
        assert [i async for i in wool.prefetch(r.count_up(200), 8)] == list(range(200))
        assert [i async for i in wool.prefetch(r.count_up(3), 10)] == [0, 1, 2]
        assert [i async for i in wool.prefetch(r.count_up(0), 1)] == []


async def test_the_worker_never_runs_more_than_n_steps_ahead():
    n = 3
    async with wool.WorkerPool(size=1):
        stream = wool.prefetch(r.counted("ahead"), n)
        async with contextlib.aclosing(stream):
            for taken in range(1, 6):
                assert await anext(stream) == taken - 1
                assert await r.steps_begun("ahead") <= taken + n
            # It does read ahead, up to the bound, and no further.
            assert await r.steps_begun("ahead", at_least=5 + n) == 5 + n
            assert await r.steps_begun("ahead") == 5 + n
        assert await r.finally_ran("ahead")
        assert await r.steps_begun("ahead") == 5 + n  # closing ran no further step


async def test_an_exception_arrives_after_the_items_before_it():
    async with wool.WorkerPool(size=1):
        seen = []
        with pytest.raises(ValueError, match="failed after 3"):
            async for item in wool.prefetch(r.stream_then_fail(3), 10):
                seen.append(item)
        assert seen == [0, 1, 2]


async def test_an_early_close_closes_the_remote_generator_and_leaves_no_task():
    async with wool.WorkerPool(size=1):
        assert await r.add(1, 1) == 2  # the session to the worker is open (its tasks run)
        before = asyncio.all_tasks()
        async with contextlib.aclosing(wool.prefetch(r.endless("pf-closed"), 4)) as stream:
            async for item in stream:
                if item == 3:
                    break
        assert await r.finally_ran("pf-closed")
        assert asyncio.all_tasks() - before == set()


async def test_an_abandoned_prefetch_is_closed_remotely():
    async with wool.WorkerPool(size=1):
        async for item in wool.prefetch(r.endless("pf-abandoned"), 4):
            if item == 2:
                break
        # No aclose(): the generator's finalizer closes the call; the worker sees it.
        assert await r.finally_ran("pf-abandoned")


async def test_cancelling_the_consumer_closes_the_remote_generator():
    async with wool.WorkerPool(size=1):
        got_first = asyncio.Event()

        async def consume() -> None:
            async for _ in wool.prefetch(r.stalls_on_second_step("pf-cancel", "pf-s"), 3):
                got_first.set()

        consumer = asyncio.create_task(consume())
        async with asyncio.timeout(30):
            await got_first.wait()
        assert await r.finally_ran("pf-s")  # the second step is running (stalled)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await r.finally_ran("pf-cancel")


async def test_asend_and_athrow_are_refused_and_the_stream_goes_on():
    async with wool.WorkerPool(size=1):
        stream = wool.prefetch(r.count_up(5), 2)
        assert await stream.asend(None) == 0
        with pytest.raises(TypeError, match="cannot send a value into a wool.prefetch"):
            await stream.asend(1)
        with pytest.raises(TypeError, match="cannot throw into a wool.prefetch"):
            await stream.athrow(ValueError("x"))
        assert [i async for i in stream] == [1, 2, 3, 4]


async def test_a_routine_on_a_worker_can_prefetch_a_nested_generator():
    async with wool.WorkerPool(size=2):
        assert await r.sum_prefetched(300, 16) == sum(range(300))


async def test_outside_a_pool_it_fails_like_the_call_itself():
    with pytest.raises(RuntimeError, match="outside a worker pool"):
        await anext(wool.prefetch(r.count_up(3), 2))


async def test_bad_arguments_are_named():
    async def local():
        yield 1

    with pytest.raises(ValueError, match="n must be from 1 to 65,536, got 0"):
        wool.prefetch(r.count_up(3), 0)
    with pytest.raises(ValueError, match="n must be from 1 to 65,536, got 65537"):
        wool.prefetch(r.count_up(3), 65_537)
    with pytest.raises(TypeError, match="n must be an int, got str"):
        wool.prefetch(r.count_up(3), "2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int, got bool"):
        wool.prefetch(r.count_up(3), True)
    with pytest.raises(TypeError, match="takes the call of a @wool.routine async generator"):
        wool.prefetch(local(), 2)
    coroutine = r.add(1, 2)
    with pytest.raises(TypeError, match="takes the call of a @wool.routine async generator"):
        wool.prefetch(coroutine, 2)  # type: ignore[arg-type]
    coroutine.close()
    async with wool.WorkerPool(size=1):
        started = r.count_up(3)
        assert await anext(started) == 0
        with pytest.raises(ValueError, match="not iterated yet"):
            wool.prefetch(started, 2)
        await started.aclose()
