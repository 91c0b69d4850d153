"""Core's dispatch policy, the same for every load balancer.

The balancer only ranks the candidates; core tries them in that order, skips a worker
that fails transiently, evicts one that fails otherwise, tries the candidates the
balancer left out, and raises NoWorkersAvailable naming each failure after a full pass.
Real workers served in this process, real gRPC servers failing with a chosen status.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import warnings
from collections.abc import Sequence

import grpc
import pytest

import wool
from tests.core import routines as r
from wool.testing import InProcessPool, RogueWorker, refusing

TRANSIENT = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
]
EVICTING = [
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.FAILED_PRECONDITION,
]


class Ranked:
    """Ranks the workers whose uids it holds first, in that order; records what it saw."""

    def __init__(self, *first: str, only: bool = False) -> None:
        self.first = first
        self.only = only
        self.seen: list[tuple[wool.Candidate, ...]] = []

    def order(self, task: wool.Task, candidates: Sequence[wool.Candidate]):
        self.seen.append(tuple(candidates))
        by_uid = {c.uid: c for c in candidates}
        head = [by_uid[uid] for uid in self.first if uid in by_uid]
        return head if self.only else head + [c for c in candidates if c not in head]


async def dispatch(pool: InProcessPool, *args: int) -> wool.RemoteCall:
    task = wool.Task(routine="add", callable=r.add, args=args, kwargs={}, proxy=pool.proxy)
    return await pool.proxy.dispatch(task)


async def test_the_balancers_first_choice_takes_the_task():
    async with InProcessPool(3, loadbalancer=Ranked()) as pool:
        pool.proxy.loadbalancer.first = (pool.workers[2].uid,)  # type: ignore[attr-defined]
        for i in range(4):
            call = await dispatch(pool, i, 1)
            assert call.worker == pool.workers[2]
            assert await call.result() == i + 1


@pytest.mark.parametrize(
    ("code", "evicted"),
    [(code, False) for code in TRANSIENT] + [(code, True) for code in EVICTING],
    ids=lambda value: value.name if isinstance(value, grpc.StatusCode) else str(value),
)
async def test_a_transient_failure_skips_the_worker_and_any_other_evicts_it(
    code: grpc.StatusCode, evicted: bool
):
    rogue = RogueWorker(code)
    async with rogue as metadata:
        balancer = Ranked(rogue.uid)
        async with InProcessPool(1, loadbalancer=balancer, others=[metadata]) as pool:
            results = [await r.add(i, 1) for i in range(3)]
            routable = {m.uid for m in pool.proxy.workers}
            candidates = [c.uid for c in balancer.seen[-1]]
    assert results == [1, 2, 3]
    assert (rogue.uid not in routable) == evicted
    # A kept worker stays first in line (and is tried again); an evicted one is gone.
    assert (rogue.uid not in candidates) == evicted
    assert rogue.sessions == (1 if evicted else 3)


async def test_a_refusing_worker_is_skipped_and_kept():
    async with InProcessPool(2, loadbalancer=Ranked()) as pool:
        refuser, other = pool.workers
        pool.proxy.loadbalancer.first = (refuser.uid,)  # type: ignore[attr-defined]
        with refusing(refuser.uid) as refusals:
            calls = [await dispatch(pool, i, 0) for i in range(3)]
        assert [c.worker for c in calls] == [other] * 3
        assert [await c.result() for c in calls] == [0, 1, 2]
        assert refusals.refusals[refuser.uid] == 3
        assert {m.uid for m in pool.proxy.workers} == {refuser.uid, other.uid}


async def test_candidates_the_balancer_left_out_are_tried_after_its_choice():
    rogue = RogueWorker(grpc.StatusCode.UNAVAILABLE)
    async with rogue as metadata:
        balancer = Ranked(rogue.uid, only=True)
        async with InProcessPool(1, loadbalancer=balancer, others=[metadata]) as pool:
            call = await dispatch(pool, 2, 2)
            assert call.worker == pool.workers[0]
            assert await call.result() == 4
    assert rogue.sessions == 1


async def test_no_workers_available_after_a_full_pass_names_each_failure():
    async with contextlib.AsyncExitStack() as stack:
        unavailable = await stack.enter_async_context(RogueWorker(grpc.StatusCode.UNAVAILABLE))
        internal = await stack.enter_async_context(RogueWorker(grpc.StatusCode.INTERNAL))
        pool = await stack.enter_async_context(
            InProcessPool(1, others=[unavailable, internal], loadbalancer=Ranked())
        )
        (refuser,) = pool.workers
        stack.enter_context(refusing(refuser.uid, reason="busy here"))
        with pytest.raises(wool.NoWorkersAvailable, match="after trying 3") as info:
            await r.add(1, 2)
        assert {m.uid for m in pool.proxy.workers} == {unavailable.uid, refuser.uid}
    message = str(info.value)
    for uid in (unavailable.uid, internal.uid, refuser.uid):
        assert uid in message
    assert "UNAVAILABLE" in message and "INTERNAL" in message and "busy here" in message


async def test_a_routines_own_exception_is_no_worker_fault():
    async with InProcessPool(2) as pool:
        for _ in range(4):
            with pytest.raises(ValueError, match="bad value"):
                await r.fail_with("value")
        assert len(pool.proxy.workers) == 2


async def test_the_balancer_sees_this_proxys_calls_in_flight_per_worker():
    balancer = Ranked()
    async with InProcessPool(2, loadbalancer=balancer) as pool:
        busy, idle = pool.workers
        balancer.first = (busy.uid,)
        stream = r.count_up(10)
        assert await anext(stream) == 0  # a generator call stays in flight while open
        assert await r.add(1, 1) == 2  # also on the busy worker, ranked first
        in_flight = {c.uid: c.in_flight for c in balancer.seen[-1]}
        assert in_flight == {busy.uid: 1, idle.uid: 0}
        await stream.aclose()
        assert await r.add(1, 1) == 2
        assert {c.uid: c.in_flight for c in balancer.seen[-1]} == {busy.uid: 0, idle.uid: 0}
        seen = {c.uid: c for c in balancer.seen[-1]}
        # The busy worker reported its load with each answer; the idle one never talked.
        assert seen[busy.uid].reported_running == 0 and seen[busy.uid].loop_lag is not None
        assert seen[idle.uid].reported_running is None and seen[idle.uid].loop_lag is None


class Foreign:
    def order(self, task, candidates):
        return ["worker-1"]


class Async:
    async def order(self, task, candidates):
        return candidates


class NotIterable:
    def order(self, task, candidates):
        return 3


@pytest.mark.parametrize(
    ("balancer", "problem"),
    [
        (Foreign(), "returned 'worker-1', which is not one of the candidates"),
        (Async(), "not an awaitable"),
        (NotIterable(), "must return an iterable of the candidates it was given, got int"),
    ],
    ids=["foreign", "async", "not-iterable"],
)
async def test_a_balancer_breaking_the_contract_gets_a_clear_error(balancer, problem):
    async with InProcessPool(1, loadbalancer=balancer):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an un-awaited coroutine would warn
            with pytest.raises(TypeError, match=problem):
                await r.add(1, 1)


async def test_a_balancer_with_the_old_dispatch_contract_is_told_what_changed():
    class Old:
        async def dispatch(self, task, context):
            raise AssertionError("never called")

    with pytest.raises(TypeError, match=r"order\(task, candidates\).*gave way to order"):
        async with InProcessPool(1, loadbalancer=Old()):
            pass


async def test_concurrent_dispatches_count_as_in_flight_from_the_moment_they_are_sent():
    class LeastBusy:
        def order(self, task, candidates):
            return [min(candidates, key=lambda c: c.in_flight)]

    async with InProcessPool(3, loadbalancer=LeastBusy()) as pool:
        calls = await asyncio.gather(*(dispatch(pool, i, i) for i in range(30)))
        per_worker = collections.Counter(call.worker.uid for call in calls)
        assert sorted(per_worker.values()) == [10, 10, 10]
        assert [await call.result() for call in calls] == [2 * i for i in range(30)]
        results = await asyncio.gather(*(r.add(i, i) for i in range(60)))
    assert results == [2 * i for i in range(60)]
