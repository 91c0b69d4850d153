"""Bad input: what cannot be pickled or unpickled, what is huge, what is not a coroutine.

Each gives a clear error naming the problem, and the pool keeps working after it. The
workers are hosted once for the module by a pool in another process; each test joins
them with a durable pool of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import HostedPool, hosted_pool

BOUND = 60.0
SMALL_LIMIT = 4 << 20


@pytest.fixture(scope="module")
def host() -> Iterator[HostedPool]:
    """One worker, hosted in another process, whose environment says it is the worker."""
    with hosted_pool(f"bad-{uuid.uuid4().hex[:8]}", 1, env={"WOOL_TEST_SIDE": "worker"}) as pool:
        yield pool


@pytest.fixture
async def pool(host: HostedPool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[wool.WorkerPool]:
    monkeypatch.setenv("WOOL_TEST_SIDE", "caller")
    async with wool.WorkerPool(discovery=wool.LocalDiscovery(host.namespace)) as pool:
        assert pool.proxy is not None
        await pool.proxy.wait_for([w.uid for w in host.workers], timeout=BOUND)
        yield pool
        # Whatever the test did, the pool still serves.
        async with asyncio.timeout(BOUND):
            assert await r.add(20, 22) == 42


def text_of(exc: BaseException) -> str:
    """Everything a user sees of an exception: message, notes, traceback and chain."""
    return "".join(traceback.format_exception(exc))


async def fails(call, error: type[BaseException]) -> BaseException:
    async with asyncio.timeout(BOUND):
        with pytest.raises(error) as info:
            await call
    return info.value


# -- pickling ----------------------------------------------------------------------------


async def test_an_argument_that_cannot_be_pickled_is_named(pool):
    exc = await fails(r.echo(threading.Lock()), TypeError)
    assert re.search(r"argument 'value' of routine echo\(\) cannot be pickled", str(exc))
    assert "lock" in str(exc)


async def test_an_argument_whose_reduce_raises_is_named_with_its_error(pool):
    exc = await fails(r.echo(value=r.RefusesPickling()), TypeError)
    assert "argument 'value' of routine echo() cannot be pickled" in str(exc)
    assert "RefusesPickling refuses to be pickled" in str(exc)


async def test_a_result_that_cannot_be_pickled_is_named(pool):
    exc = await fails(r.unpicklable_result(), TypeError)
    assert "result of routine unpicklable_result() cannot be pickled" in str(exc)


async def test_a_result_whose_reduce_raises_is_named_with_its_error(pool):
    exc = await fails(r.refusing_result(), TypeError)
    assert "result of routine refusing_result() cannot be pickled" in str(exc)
    assert "RefusesPickling refuses to be pickled" in str(exc)


async def test_a_yielded_value_that_cannot_be_pickled_is_named(pool):
    stream = r.yield_unpicklable()
    async with asyncio.timeout(BOUND):
        assert await anext(stream) == 1
        with pytest.raises(TypeError, match=r"yielded value of routine yield_unpicklable\(\)"):
            await anext(stream)


@pytest.mark.parametrize(
    ("routine", "kind"),
    [(r.raise_unpicklable, "UnpicklableError"), (r.raise_refusing, "ErrorRefusingPickling")],
)
async def test_an_exception_that_cannot_be_pickled_arrives_described(pool, routine, kind):
    exc = await fails(routine(), wool.RemoteTaskError)
    assert kind in str(exc) and "could not be pickled" in str(exc)
    assert exc.task_exception.type.endswith(kind)
    assert routine.__name__ in exc.task_exception.traceback


async def test_an_argument_that_cannot_be_unpickled_on_the_worker_is_named(pool):
    exc = await fails(r.echo(r.OnlyLoadsIn("caller")), Exception)
    assert "cannot be rebuilt outside the caller" in text_of(exc)
    assert re.search(r"argument.{0,80}(unpickl|deserializ)", str(exc), re.I | re.S), str(exc)


async def test_a_result_that_cannot_be_unpickled_in_the_caller_is_named(pool):
    exc = await fails(r.result_only_loads_in("worker"), Exception)
    assert "cannot be rebuilt outside the worker" in text_of(exc)
    assert "result_only_loads_in()" in str(exc) and re.search(r"unpickl", str(exc), re.I)


# -- size --------------------------------------------------------------------------------


async def test_a_100_mb_argument_and_result_go_through(pool):
    payload = bytes(range(256)) * (100 * 1024 * 1024 // 256)
    async with asyncio.timeout(BOUND):
        echoed = await r.echo(payload)
    assert len(echoed) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


async def test_an_argument_over_the_callers_limit_is_refused_before_it_is_sent(pool):
    from wool import _settings

    with _settings.override(max_message_bytes=SMALL_LIMIT):
        exc = await fails(r.size_of(b"x" * (2 * SMALL_LIMIT)), ValueError)
    assert "size_of()" in str(exc) and "WOOL_MAX_MESSAGE_BYTES" in str(exc)


@pytest.fixture(scope="module")
def small_host() -> Iterator[HostedPool]:
    """A worker whose message limit is smaller than this caller's."""
    env = {"WOOL_MAX_MESSAGE_BYTES": str(SMALL_LIMIT)}
    with hosted_pool(f"small-{uuid.uuid4().hex[:8]}", 1, env=env) as pool:
        yield pool


@pytest.fixture
async def small_pool(small_host: HostedPool) -> AsyncIterator[wool.WorkerPool]:
    async with wool.WorkerPool(discovery=wool.LocalDiscovery(small_host.namespace)) as pool:
        assert pool.proxy is not None
        await pool.proxy.wait_for([w.uid for w in small_host.workers], timeout=BOUND)
        yield pool
        async with asyncio.timeout(BOUND):
            assert await r.add(20, 22) == 42


async def test_a_result_over_the_workers_limit_is_a_clear_error(small_pool):
    exc = await fails(r.make_bytes(2 * SMALL_LIMIT), ValueError)
    assert "result of routine make_bytes()" in str(exc) and "WOOL_MAX_MESSAGE_BYTES" in str(exc)


async def test_an_argument_over_the_workers_limit_fails_only_its_own_call(small_pool):
    bystander = r.count_up(3)
    async with asyncio.timeout(BOUND):
        assert await anext(bystander) == 0  # a call in flight on the same session
        with pytest.raises(ValueError, match="WOOL_MAX_MESSAGE_BYTES"):
            await r.size_of(b"x" * (2 * SMALL_LIMIT))
        assert [item async for item in bystander] == [1, 2]


async def test_an_argument_over_the_workers_limit_fails_in_bounded_time(small_pool):
    async with asyncio.timeout(BOUND):
        with pytest.raises(Exception, match="larger than max|WOOL_MAX_MESSAGE_BYTES"):
            await r.size_of(b"x" * (2 * SMALL_LIMIT))


# -- not a routine -----------------------------------------------------------------------


def plain(x):
    return x


def generator(x):
    yield x


@pytest.mark.parametrize(
    ("function", "kind"),
    [(plain, "function"), (generator, "generator function"), (lambda: 1, "function")],
    ids=["function", "generator", "lambda"],
)
def test_a_routine_that_is_not_async_is_refused_at_decoration(function, kind):
    with pytest.raises(TypeError, match="needs an async function or async generator") as info:
        wool.routine(function)
    assert f"is a {kind}" in str(info.value) and function.__qualname__ in str(info.value)


def test_a_non_callable_is_refused_at_decoration():
    with pytest.raises(TypeError, match="needs an async function"):
        wool.routine(42)  # type: ignore[arg-type]


# -- calls that do not fit the routine ---------------------------------------------------


async def test_a_coroutine_routine_called_with_wrong_arguments_raises_type_error(pool):
    exc = await fails(r.add(1), TypeError)
    assert "missing 1 required positional argument" in str(exc)


async def test_a_generator_routine_called_with_wrong_arguments_raises_type_error(pool):
    first_step = asyncio.ensure_future(anext(r.count_up()))
    try:
        done, _ = await asyncio.wait([first_step], timeout=3)
        assert done, "the first step of a generator called with wrong arguments hangs"
        with pytest.raises(TypeError, match="missing 1 required positional argument"):
            first_step.result()
    finally:
        first_step.cancel()  # leaving the pool ends it, if the worker never does
