"""Coroutines and async generators keep their semantics across real worker processes."""

from __future__ import annotations

import contextlib
import os

import pytest

import wool
from tests.core import routines as r


async def test_coroutine_returns_its_result_from_another_process():
    async with wool.WorkerPool(size=2):
        assert await r.add(1, 2) == 3
        assert await r.pid() != os.getpid()


async def test_async_generator_streams_every_item():
    async with wool.WorkerPool(size=2):
        assert [i async for i in r.count_up(50)] == list(range(50))


async def test_asend_athrow_and_aclose_reach_the_remote_generator():
    async with wool.WorkerPool(size=1):
        gen = r.accumulator("acc")
        assert await gen.asend(None) == 0
        assert await gen.asend(5) == 5
        assert await gen.asend(10) == 15
        assert await gen.athrow(ValueError("oops")) == "recovered from oops"
        assert await gen.asend(None) == -1
        await gen.aclose()
        assert await r.finally_ran("acc")


async def test_early_break_runs_the_remote_finally():
    async with wool.WorkerPool(size=1):
        async with contextlib.aclosing(r.endless("closed")) as stream:
            async for item in stream:
                if item == 3:
                    break
        assert await r.finally_ran("closed")


async def test_abandoned_generator_is_closed_remotely():
    async with wool.WorkerPool(size=1):
        async for item in r.endless("abandoned"):
            if item == 2:
                break
        # No aclose(): asyncio's async-generator finalizer closes it; the worker sees it.
        assert await r.finally_ran("abandoned")


async def test_generator_exception_after_items_reaches_the_consumer():
    async with wool.WorkerPool(size=1):
        seen = []
        with pytest.raises(ValueError, match="failed after 3"):
            async for item in r.stream_then_fail(3):
                seen.append(item)
        assert seen == [0, 1, 2]


async def test_instance_class_and_static_methods():
    async with wool.WorkerPool(size=2):
        calculator = r.Calculator(10)
        assert await calculator.add(5) == 15
        made = await r.Calculator.make(3)
        assert isinstance(made, r.Calculator) and made.offset == 3
        assert await r.Calculator.name() == "Calculator"
        assert await r.Calculator.double(4) == 8
        assert await r.Calculator.triple(4) == 12
        assert await calculator.double(5) == 10


async def test_closures_and_locally_defined_routines():
    factor = 7

    @wool.routine
    async def scale(x: int) -> int:
        return x * factor

    make_adder = lambda n: wool.routine(_adder(n))  # noqa: E731

    async with wool.WorkerPool(size=2):
        assert await scale(6) == 42
        assert await make_adder(5)(1) == 6


def _adder(n: int):
    async def add_n(x: int) -> int:
        return x + n

    return add_n


async def test_many_concurrent_calls_all_complete():
    import asyncio

    async with wool.WorkerPool(size=2):
        results = await asyncio.gather(*(r.add(i, i) for i in range(500)))
        assert results == [2 * i for i in range(500)]


def test_decorating_a_non_async_function_is_a_type_error():
    def plain(x):
        return x

    with pytest.raises(TypeError, match="async function or async generator.*plain"):
        wool.routine(plain)


async def test_calling_a_routine_outside_a_pool_names_the_fix():
    with pytest.raises(RuntimeError, match=r"add\(\) was called outside a worker pool"):
        await r.add(1, 2)
