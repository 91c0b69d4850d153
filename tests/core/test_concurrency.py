"""A worker's concurrency limit: refusals as "full", waiting callers, nested calls.

Real workers (served in this process, or spawned) with real gRPC sessions. What is
checked: how many calls a worker runs at once, that calls beyond every worker's limit
wait at the caller in arrival order and never fail for it, and that nested calls (a
parent awaiting its children on the same full workers) finish.
"""

from __future__ import annotations

import asyncio

import grpc.aio
import pytest

import wool
from tests.core import routines as r
from tests.lb_leastbusy import routines as lr
from tests.lb_leastbusy.gates import fresh_gates  # noqa: F401 (autouse fixture)
from tests.reliability.support import PROTOCOL_HEADER, SESSION_METHOD, identity
from tests.support import conditions
from wool.testing import InProcessPool, InProcessWorker

TIMEOUT = 10.0


async def started(*labels: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        for label in labels:
            await lr.gate(f"started:{label}").wait()


async def until(predicate, what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    await conditions.until(predicate, what, TIMEOUT)


def waiting(pool: InProcessPool) -> int:
    return pool.proxy._context.capacity.waiting


@pytest.mark.parametrize("balancer", ["roundrobin", "leastbusy"])
async def test_calls_beyond_every_workers_limit_wait_in_arrival_order(balancer):
    # One call ends at a time, so exactly one slot frees and exactly one waiting call
    # may start (two calls started on two workers at once may start in either order).
    async with InProcessPool(2, loadbalancer=balancer, concurrency=1) as pool:
        blockers = [asyncio.create_task(lr.hold(f"end:b{i}", f"b{i}")) for i in range(2)]
        await started("b0", "b1")
        queued = []
        for i in range(5):
            queued.append(asyncio.create_task(lr.hold(f"end:w{i}", f"w{i}")))
            await until(lambda n=i + 1: waiting(pool) == n, f"call w{i} waits")
        assert sorted(lr.STARTED) == ["b0", "b1"]  # nobody ran beyond the limit
        order = ["w0", "w1", "w2", "w3", "w4"]
        endings = ["b0", "b1", "w0", "w1", "w2"]
        for index, (ending, label) in enumerate(zip(endings, order, strict=True)):
            lr.gate(f"end:{ending}").set()
            await started(label)
            assert lr.STARTED[2:] == order[: index + 1]  # first come, first served
        lr.gate("end:w3").set()
        lr.gate("end:w4").set()
        assert sorted(await asyncio.gather(*blockers)) == ["b0", "b1"]
        assert await asyncio.gather(*queued) == order


async def test_calls_that_wait_past_the_recheck_still_start_in_arrival_order(monkeypatch):
    import wool._caller_capacity as capacity
    import wool._caller_dispatch as dispatch

    monkeypatch.setattr(capacity, "RECHECK_SECONDS", 0.01)  # many rechecks while they wait
    passes = []
    one_pass = dispatch._one_pass

    async def counted(*args):
        passes.append(args)
        return await one_pass(*args)

    monkeypatch.setattr(dispatch, "_one_pass", counted)
    async with InProcessPool(1, concurrency=1) as pool:
        first = asyncio.create_task(lr.hold("end:a", "a"))
        await started("a")
        labels = ["b", "c", "d", "e"]
        queued = []
        for count, label in enumerate(labels, start=1):
            queued.append(asyncio.create_task(lr.hold(f"end:{label}", label)))
            await until(lambda n=count: waiting(pool) == n, f"{label} waits")
        await until(lambda: len(passes) >= 30, "the workers were tried again and again")
        for ending, label in zip(["a", "b", "c", "d"], labels, strict=True):
            lr.gate(f"end:{ending}").set()
            await started(label)
        lr.gate("end:e").set()
        assert lr.STARTED == ["a", *labels]
        assert await first == "a"
        assert await asyncio.gather(*queued) == labels


async def test_a_caller_waiting_on_another_callers_calls_is_woken_by_the_workers_report(
    monkeypatch,
):
    import wool._caller_capacity

    monkeypatch.setattr(wool._caller_capacity, "RECHECK_SECONDS", 60.0)  # only the report wakes it
    async with InProcessWorker(concurrency=1) as metadata:
        subscriber = wool.testing.StaticSubscriber([metadata])
        theirs = wool.CallerProxy(subscriber, wool.LeastBusyLoadBalancer())
        ours = wool.CallerProxy(subscriber, wool.LeastBusyLoadBalancer())
        try:
            task = wool.Task(
                routine="hold", callable=lr.hold, args=("go", "t"), kwargs={}, proxy=theirs
            )
            held = await theirs.dispatch(task)
            add = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=ours)
            waiting_call = asyncio.create_task(ours.dispatch(add))
            await until(lambda: ours._context.capacity.waiting == 1, "our call waits")
            lr.gate("go").set()
            assert await held.result() == "t"
            async with asyncio.timeout(TIMEOUT):
                call = await waiting_call
            assert await call.result() == 3
        finally:
            await theirs.stop()
            await ours.stop()


async def test_a_full_worker_holds_one_standby_call_and_refuses_a_second_as_full():
    async with InProcessWorker(concurrency=1) as metadata:
        proxy = wool.CallerProxy(
            wool.testing.StaticSubscriber([metadata]), wool.RoundRobinLoadBalancer()
        )
        connection = wool.CallerConnection(metadata)

        def hold(label: str) -> wool.Task:
            args = (f"end:{label}", label)
            return wool.Task(routine="hold", callable=lr.hold, args=args, kwargs={}, proxy=proxy)

        try:
            running = await connection.dispatch(hold("a"))
            standby = asyncio.create_task(connection.dispatch(hold("b"), standby=True))
            await until(lambda: len(connection._session._calls) == 2, "b's start is sent")
            with pytest.raises(wool.TransientDispatchError, match="is full"):  # after b: one held
                await connection.dispatch(hold("c"), standby=True)
            assert not standby.done() and lr.STARTED == ["a"]  # held, not started
            lr.gate("end:a").set()
            assert await running.result() == "a"
            async with asyncio.timeout(TIMEOUT):
                held = await standby
            await started("b")
            lr.gate("end:b").set()
            assert await held.result() == "b"
        finally:
            await connection.close()
            await proxy.stop()


async def test_a_standby_call_held_by_a_worker_that_begins_to_stop_never_starts_there():
    worker = InProcessWorker(concurrency=1)
    async with worker as metadata:
        proxy = wool.CallerProxy(
            wool.testing.StaticSubscriber([metadata]), wool.RoundRobinLoadBalancer()
        )
        connection = wool.CallerConnection(metadata)
        try:
            args = ("end:a", "a")
            task = wool.Task(routine="hold", callable=lr.hold, args=args, kwargs={}, proxy=proxy)
            running = await connection.dispatch(task)
            add = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)
            standby = asyncio.create_task(connection.dispatch(add, standby=True))
            await until(lambda: len(connection._session._calls) == 2, "the standby is sent")
            stopping = asyncio.create_task(worker._worker.stop(TIMEOUT))
            await until(lambda: worker._worker._server is None, "the worker stops")
            lr.gate("end:a").set()  # its slot frees: the standby must not start
            with pytest.raises(wool.TransientDispatchError, match="is stopping"):
                await standby
            assert await running.result() == "a"
            await stopping
        finally:
            await connection.close()
            await proxy.stop()


async def test_a_full_worker_refuses_a_call_as_transient_naming_its_limit():
    async with InProcessWorker(concurrency=1) as metadata:
        proxy = wool.CallerProxy(
            wool.testing.StaticSubscriber([metadata]), wool.RoundRobinLoadBalancer()
        )
        connection = wool.CallerConnection(metadata)
        try:
            held = await connection.dispatch(
                wool.Task(
                    routine="hold", callable=lr.hold, args=("go", "a"), kwargs={}, proxy=proxy
                )
            )
            extra = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)
            with pytest.raises(wool.TransientDispatchError, match="is full"):
                await connection.dispatch(extra)
            lr.gate("go").set()
            assert await held.result() == "a"
            assert await (await connection.dispatch(extra)).result() == 3  # room again
        finally:
            await connection.close()
            await proxy.stop()


@pytest.mark.parametrize(("concurrency", "told"), [(3, "3"), (None, None)])
async def test_a_worker_tells_its_limit_in_its_session_answer(concurrency, told):
    # Callers know a worker is full from the calls they sent it, before its first load
    # report arrives (a worker whose loop a call blocks sends none for a while).
    async with InProcessWorker(concurrency=concurrency) as metadata:
        async with grpc.aio.insecure_channel(metadata.address) as channel:
            method = channel.stream_stream(
                SESSION_METHOD, request_serializer=identity, response_deserializer=identity
            )
            call = method(metadata=((PROTOCOL_HEADER, "1"),))
            answer = dict(await call.initial_metadata())
            call.cancel()
    assert answer.get("wool-concurrency") == told


async def test_a_call_to_a_full_worker_goes_to_one_with_room():
    async with InProcessPool(2, concurrency=1) as pool:  # round-robin: would alternate
        first = asyncio.create_task(lr.hold("go", "a"))
        await started("a")
        for _ in range(4):
            task = wool.Task(
                routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=pool.proxy
            )
            call = await pool.proxy.dispatch(task)
            assert await call.result() == 3
        busy = {c.uid for c in pool.proxy._context.candidates() if c.reported_running == 1}
        assert len(busy) == 1
        lr.gate("go").set()
        assert await first == "a"


@pytest.mark.parametrize("standby", [False, True])
@pytest.mark.parametrize("size", [1, 2])
async def test_nested_calls_finish_under_a_limit_of_one(size, standby):
    async with InProcessPool(size, loadbalancer="leastbusy", concurrency=1, standby=standby):
        assert await r.fib(8) == 21


async def test_an_idle_generator_holds_no_slot_between_steps():
    async with InProcessPool(1, concurrency=1):
        stream = r.count_up(3)
        assert await anext(stream) == 0
        assert await r.add(1, 1) == 2  # would wait for ever if the generator held the slot
        assert [item async for item in stream] == [1, 2]


@pytest.mark.parametrize("standby", [False, True])
async def test_spawned_workers_run_at_most_their_limit_and_nest(standby):
    async with wool.WorkerPool(size=2, loadbalancer="leastbusy", concurrency=1, standby=standby):
        peaks = await asyncio.gather(*(r.running_peak(0.05) for _ in range(6)))
        assert max(peaks) == 1
        value, calls, pids = await r.fib_traced(6)
        assert value == 8 and calls == 25 and len(pids) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_concurrency_is_refused_before_anything_starts(bad):
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        wool.WorkerPool(size=1, concurrency=bad)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_a_bad_standby_is_refused_before_anything_starts(bad):
    with pytest.raises(TypeError, match="standby must be True or False"):
        wool.WorkerPool(size=1, standby=bad)


async def test_with_standby_a_full_worker_holds_one_more_call_and_starts_it_when_a_slot_frees():
    async with InProcessPool(1, loadbalancer="leastbusy", concurrency=1, standby=True) as pool:
        (worker,) = pool.workers

        def held(calls: int) -> bool:
            return pool.proxy._context.in_flight(worker.uid) == calls

        first = asyncio.create_task(lr.hold("end:a", "a"))
        await started("a")
        labels = ["b", "c", "d"]
        queued = [asyncio.create_task(lr.hold(f"end:{label}", label)) for label in labels]
        # As many calls wait as there are workers, and more: the first in line goes to
        # the full worker as its standby (sent, held there, not started), the rest wait.
        await until(lambda: held(2) and waiting(pool) == 2, "b is held, c and d wait")
        assert lr.STARTED == ["a"]
        lr.gate("end:a").set()
        await started("b")  # the worker started its standby itself
        await until(lambda: held(2) and waiting(pool) == 1, "c is held, d waits")
        assert lr.STARTED == ["a", "b"]
        lr.gate("end:b").set()
        await started("c")
        lr.gate("end:c").set()
        await started("d")
        lr.gate("end:d").set()
        assert lr.STARTED == ["a", "b", "c", "d"]  # in arrival order, one at a time
        assert await first == "a"
        assert await asyncio.gather(*queued) == labels


async def test_without_standby_no_call_is_sent_to_a_full_worker():
    async with InProcessPool(1, loadbalancer="leastbusy", concurrency=1) as pool:
        (worker,) = pool.workers
        first = asyncio.create_task(lr.hold("end:a", "a"))
        await started("a")
        queued = [asyncio.create_task(lr.hold(f"end:{label}", label)) for label in "bcd"]
        await until(lambda: waiting(pool) == 3, "b, c and d wait")
        lr.gate("end:a").set()
        await started("b")
        await until(lambda: waiting(pool) == 2, "c and d wait at the caller")
        assert pool.proxy._context.in_flight(worker.uid) == 1
        for label in "bcd":
            lr.gate(f"end:{label}").set()
        assert await first == "a"
        assert await asyncio.gather(*queued) == list("bcd")
