"""The conformance suite of load-balancer plugins."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import cloudpickle

from wool._caller_candidates import Candidate
from wool._caller_proxy import CallerProxy
from wool._protocols import LoadBalancerLike
from wool._task import Task
from wool.testing import _routines
from wool.testing._balancing import StaticSubscriber, refusing
from wool.testing._common import check, fail, run
from wool.testing._pool import InProcessPool
from wool.testing._workers import worker_metadata

LoadBalancerFactory = Callable[[], LoadBalancerLike]


class LoadBalancerConformance:
    """The contract of a load-balancer plugin, as pytest tests to inherit.

    Subclass it in a test module (the subclass's name must start with ``Test``) and
    provide a ``loadbalancer_factory`` fixture returning a callable that makes a new
    balancer (the class itself will do)::

        class TestMyBalancer(wool.testing.LoadBalancerConformance):
            @pytest.fixture
            def loadbalancer_factory(self):
                return MyBalancer

    The contract: ``order(task, candidates)`` is a plain (not async) method that
    returns an iterable of some of the :class:`wool.Candidate` objects it was given,
    each at most once, and at least one when it was given any; it copes with any number
    of candidates, with their number changing between calls, and with load it does not
    know (``None``); and the balancer pickles with cloudpickle, because every task
    carries a copy for the nested dispatches of its routine. The failure policy (skip,
    evict, ``NoWorkersAvailable``) is wool's, not the balancer's, so it is not checked
    here. The checks that dispatch use real workers served in this process
    (:class:`InProcessPool`), each in an event loop of its own, so the suite needs no
    pytest plugin; ``timeout`` bounds each check. Override a check to skip it (say why).
    """

    timeout: float = 30.0
    dispatches: int = 6
    """How many tasks each check sends where one is not enough."""

    # -- the checks -----------------------------------------------------------------

    def test_it_is_a_load_balancer(self, loadbalancer_factory: LoadBalancerFactory):
        balancer = loadbalancer_factory()
        check(
            isinstance(balancer, LoadBalancerLike),  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
            f"{balancer!r} has no order(task, candidates) method (wool.LoadBalancerLike)",
        )
        check(
            not inspect.iscoroutinefunction(balancer.order),
            f"{type(balancer).__name__}.order must be a plain method, not async: it runs on "
            "the dispatch path for every task",
        )

    def test_order_returns_only_the_candidates_it_was_given(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        balancer = loadbalancer_factory()
        pool = [worker_metadata(f"worker-{i}", address=f"127.0.0.1:{50100 + i}") for i in range(6)]
        # The number of workers changes between calls, as discovery would make it.
        for size in (3, 1, 6, 2, 0, 5, 6, 1):
            candidates = tuple(
                Candidate(m, in_flight=i % 3, reported_running=None if i % 2 else i)
                if i % 3
                else Candidate(
                    m, i % 2, reported_running=i, loop_lag=0.5, unreported=i, concurrency=1
                )
                for i, m in enumerate(pool[:size])
            )
            for routine in ("add", "fib", "stream"):
                self._check_order(balancer, _task(routine, balancer), candidates)

    def test_order_copes_with_many_candidates_and_tasks(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        balancer = loadbalancer_factory()
        candidates = tuple(
            Candidate(worker_metadata(f"w-{i:03}", address=f"127.0.0.1:{51000 + i}"), in_flight=i)
            for i in range(200)
        )
        for i in range(50 * self.dispatches):
            self._check_order(balancer, _task(f"routine_{i % 17}", balancer), candidates)

    def test_tasks_run_on_real_workers(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            async with InProcessPool(3, loadbalancer=loadbalancer_factory()) as pool:
                results = [await _routines.add(i, 1) for i in range(3 * self.dispatches)]
                check(results == [i + 1 for i in range(3 * self.dispatches)], f"got {results}")
                check(
                    len(pool.proxy.workers) == 3,
                    "a healthy worker was evicted while this balancer ranked the workers",
                )

        self._run(body(), "dispatch to healthy workers")

    def test_concurrent_dispatches_all_succeed(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            async with InProcessPool(3, loadbalancer=loadbalancer_factory()):
                count = 8 * self.dispatches
                results = await asyncio.gather(*(_routines.add(i, i) for i in range(count)))
                check(results == [2 * i for i in range(count)], f"got {results}")

        self._run(body(), "concurrent dispatches")

    def test_tasks_still_run_when_its_choice_refuses(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        async def body() -> None:
            async with InProcessPool(2, loadbalancer=loadbalancer_factory()) as pool:
                with refusing(pool.workers[0].uid):
                    results = [await _routines.add(i, 2) for i in range(self.dispatches)]
                check(results == [i + 2 for i in range(self.dispatches)], f"got {results}")
                check(
                    len(pool.proxy.workers) == 2,
                    "a worker that refused tasks was evicted; refusing is transient",
                )

        self._run(body(), "tasks run when a worker refuses")

    def test_it_pickles_for_nested_dispatch(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            balancer = loadbalancer_factory()
            copy = _roundtrip(balancer)
            check(
                isinstance(copy, LoadBalancerLike),  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
                f"the unpickled balancer {copy!r} is not a wool.LoadBalancerLike",
            )
            # The real path: the task carries the proxy; the worker dispatches the nested
            # call through its own unpickled copy of the proxy and of the balancer.
            async with InProcessPool(2, loadbalancer=balancer):
                results = [await _routines.nested_add(i, 1) for i in range(self.dispatches)]
                check(
                    results == [i + 1 for i in range(self.dispatches)],
                    f"nested dispatch returned {results}",
                )

        self._run(body(), "pickling for nested dispatch")

    # -- helpers --------------------------------------------------------------------

    def _run(self, body: Coroutine[Any, Any, None], what: str) -> None:
        run(body, self.timeout, what)

    def _check_order(
        self, balancer: LoadBalancerLike, task: Task, candidates: Sequence[Candidate]
    ) -> None:
        try:
            result = balancer.order(task, candidates)
        except Exception as exc:
            fail(f"order() raised {type(exc).__name__}: {exc} with {len(candidates)} candidates")
        check(
            not inspect.isawaitable(result),
            "order() returned an awaitable; it must return the candidates (an iterable)",
        )
        try:
            chosen = list(result)
        except TypeError:
            fail(f"order() must return an iterable of candidates, got {result!r}")
        given = {c.uid for c in candidates}
        foreign = [c for c in chosen if not isinstance(c, Candidate) or c.uid not in given]  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
        check(not foreign, f"order() returned objects it was not given: {foreign}")
        uids = [c.uid for c in chosen]
        check(len(uids) == len(set(uids)), f"order() returned a candidate twice: {uids}")
        check(
            not candidates or chosen,
            f"order() chose none of {len(candidates)} candidates; it must name at least one",
        )


def _task(routine: str, balancer: LoadBalancerLike) -> Task:
    proxy = CallerProxy(StaticSubscriber([]), balancer)
    return Task(routine=routine, callable=_routines.add, args=(1, 2), kwargs={}, proxy=proxy)


def _roundtrip(balancer: LoadBalancerLike) -> LoadBalancerLike:
    try:
        return cloudpickle.loads(cloudpickle.dumps(balancer))
    except Exception as exc:
        fail(
            "the balancer must pickle with cloudpickle (every task carries a copy for nested "
            f"dispatch): {type(exc).__name__}: {exc}"
        )
