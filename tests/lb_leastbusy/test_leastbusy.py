"""LeastBusyLoadBalancer: which worker gets each call, from the load workers report.

Real workers served in this process (wool.testing), real gRPC sessions; the load other
callers put on a worker reaches this caller through the worker's load reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import wool
from tests.lb_leastbusy import routines as lr
from tests.lb_leastbusy.gates import fresh_gates  # noqa: F401 (autouse fixture)
from tests.support import conditions
from wool.testing import InProcessWorker, StaticSubscriber, worker_metadata
from wool_lb_leastbusy import LeastBusyLoadBalancer, load

TIMEOUT = 10.0


def candidate(uid: str, **load_fields) -> wool.Candidate:
    return wool.Candidate(worker_metadata(uid), **load_fields)


def task(proxy: wool.CallerProxy, release: str, label: str) -> wool.Task:
    return wool.Task(
        routine="hold", callable=lr.hold, args=(release, label), kwargs={}, proxy=proxy
    )


def adding(proxy: wool.CallerProxy) -> wool.Task:
    from tests.core import routines as r

    return wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)


@contextlib.asynccontextmanager
async def proxy_of(*workers: wool.WorkerMetadata, balancer) -> AsyncIterator[wool.CallerProxy]:
    proxy = wool.CallerProxy(StaticSubscriber(list(workers)), balancer)
    await proxy.start()
    try:
        await proxy.wait_for([w.uid for w in workers], timeout=TIMEOUT)
        yield proxy
    finally:
        await proxy.stop()


async def until(predicate, what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds; reports arrive on their own schedule."""
    await conditions.until(predicate, what, TIMEOUT)


def reported(proxy: wool.CallerProxy, uid: str) -> int | None:
    for metadata, connection in proxy.workers.items():
        if metadata.uid == uid and connection.report is not None:
            return connection.report.running
    return None


# -- the choice, from the candidates' load ------------------------------------------------


def test_of_two_workers_the_less_busy_one_comes_first():
    balancer = LeastBusyLoadBalancer(seed=3)
    busy = candidate("busy", reported_running=3)
    idle = candidate("idle", reported_running=1)
    for _ in range(20):
        assert balancer.order(adding_task(), [busy, idle])[0] is idle
        assert balancer.order(adding_task(), [idle, busy])[0] is idle


def test_calls_sent_since_the_last_report_count_as_load():
    balancer = LeastBusyLoadBalancer(seed=3)
    reported_idle = candidate("a", reported_running=0, unreported=2)
    other = candidate("b", reported_running=1, unreported=0)
    assert load(reported_idle) == 2 and load(other) == 1
    assert balancer.order(adding_task(), [reported_idle, other])[0] is other


def test_before_any_report_this_callers_calls_in_flight_are_the_load():
    balancer = LeastBusyLoadBalancer(seed=3)
    quiet = candidate("quiet", in_flight=0)
    loaded = candidate("loaded", in_flight=4)
    assert balancer.order(adding_task(), [loaded, quiet])[0] is quiet


def test_a_full_worker_goes_last_and_a_lagging_loop_loses_a_tie():
    balancer = LeastBusyLoadBalancer(seed=3)
    full = candidate("full", reported_running=1, concurrency=1)
    lagging = candidate("lagging", reported_running=1, loop_lag=0.5)
    fresh = candidate("fresh", reported_running=1, loop_lag=0.0)
    for _ in range(20):
        assert balancer.order(adding_task(), [full, lagging, fresh])[-1] is full
        assert balancer.order(adding_task(), [lagging, fresh]) == [fresh, lagging]


def test_two_random_choices_never_pick_the_busiest_and_spread_the_rest():
    balancer = LeastBusyLoadBalancer(seed=7)
    workers = [candidate(f"w{i}", reported_running=i) for i in range(5)]
    firsts = [balancer.order(adding_task(), workers)[0].uid for _ in range(200)]
    assert "w4" not in firsts  # the busiest loses every comparison it is drawn into
    assert set(firsts) == {"w0", "w1", "w2", "w3"}
    assert firsts.count("w0") > firsts.count("w3")  # the less busy, the more often


def test_after_the_pick_the_other_workers_follow_least_busy_first():
    balancer = LeastBusyLoadBalancer(seed=5)
    workers = [candidate(f"w{i}", reported_running=(7 * i) % 10) for i in range(10)]
    for _ in range(20):
        ranked = balancer.order(adding_task(), workers)
        rest = [load(c) for c in list(ranked)[1:]]
        assert rest == sorted(rest)
        assert list(ranked) == [ranked[i] for i in range(len(ranked))]


def test_every_candidate_is_ranked_once():
    balancer = LeastBusyLoadBalancer()
    workers = [candidate(f"w{i}", in_flight=i % 2) for i in range(6)]
    ranked = balancer.order(adding_task(), workers)
    assert sorted(c.uid for c in ranked) == sorted(c.uid for c in workers)


def adding_task() -> wool.Task:
    proxy = wool.CallerProxy(StaticSubscriber([]), LeastBusyLoadBalancer())
    return adding(proxy)


# -- against real workers ------------------------------------------------------------------


async def test_a_burst_from_one_caller_spreads_over_the_workers():
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(InProcessWorker()) for _ in range(2)]
        proxy = await stack.enter_async_context(
            proxy_of(*workers, balancer=LeastBusyLoadBalancer(seed=1))
        )
        calls = await asyncio.gather(
            *(proxy.dispatch(task(proxy, "go", f"c{i}")) for i in range(4))
        )
        got = [call.worker.uid for call in calls]
        assert sorted(got.count(w.uid) for w in workers) == [2, 2]
        lr.gate("go").set()
        assert sorted([await call.result() for call in calls]) == ["c0", "c1", "c2", "c3"]


async def test_load_another_caller_puts_on_a_worker_steers_this_callers_calls_away():
    async with contextlib.AsyncExitStack() as stack:
        shared = await stack.enter_async_context(InProcessWorker())
        spare = await stack.enter_async_context(InProcessWorker())
        ours = await stack.enter_async_context(
            proxy_of(shared, spare, balancer=LeastBusyLoadBalancer(seed=2))
        )
        theirs = await stack.enter_async_context(proxy_of(shared, balancer=LeastBusyLoadBalancer()))
        # Our caller talks to both workers once, so that each reports to it.
        warmup = await asyncio.gather(ours.dispatch(adding(ours)), ours.dispatch(adding(ours)))
        assert {c.worker.uid for c in warmup} == {shared.uid, spare.uid}
        assert [await c.result() for c in warmup] == [3, 3]
        await until(lambda: reported(ours, shared.uid) == 0, "the shared worker reports idle")

        # The other caller loads the shared worker with three calls.
        theirs_calls = [await theirs.dispatch(task(theirs, "release", f"t{i}")) for i in range(3)]
        await until(lambda: reported(ours, shared.uid) == 3, "we see the other caller's load")

        for _ in range(4):
            call = await ours.dispatch(adding(ours))
            assert call.worker.uid == spare.uid
            assert await call.result() == 3
        lr.gate("release").set()
        assert [await c.result() for c in theirs_calls] == ["t0", "t1", "t2"]


async def test_a_pool_can_name_it():
    from tests.core import routines as r

    async with wool.testing.InProcessPool(2, loadbalancer="leastbusy") as pool:
        assert isinstance(pool.proxy.loadbalancer, wool.LeastBusyLoadBalancer)
        assert await r.add(2, 3) == 5


def lag(proxy: wool.CallerProxy, uid: str) -> float | None:
    for metadata, connection in proxy.workers.items():
        if metadata.uid == uid and connection.report is not None:
            return connection.report.lag
    return None


async def test_a_worker_reports_the_lag_of_a_loop_a_blocking_call_stalled():
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(InProcessWorker())
        proxy = await stack.enter_async_context(proxy_of(worker, balancer=LeastBusyLoadBalancer()))
        call = await proxy.dispatch(
            wool.Task(routine="block", callable=lr.block, args=(0.3,), kwargs={}, proxy=proxy)
        )
        assert await call.result() == 0.3
        # The probe due during the block ran at least 0.25 s late (it is due every 50 ms).
        await until(lambda: (lag(proxy, worker.uid) or 0.0) >= 0.25, "the lag is reported")
        await until(lambda: lag(proxy, worker.uid) < 0.25, "the loop is reported free again")
