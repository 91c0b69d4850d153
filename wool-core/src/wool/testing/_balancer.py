"""The conformance suite of load-balancer plugins, run against real workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import cloudpickle
import grpc

from wool._connection import RemoteCall
from wool._errors import NoWorkersAvailable
from wool._metadata import WorkerMetadata
from wool._protocols import LoadBalancerLike
from wool._proxy import WorkerProxy
from wool._task import Task, current_proxy
from wool.testing import _routines
from wool.testing._balancing import AdmissionRefuser, RecordingContext, StaticSubscriber, refusing
from wool.testing._common import check, fail, run
from wool.testing._workers import InProcessWorker, RogueWorker

LoadBalancerFactory = Callable[[], LoadBalancerLike]

TRANSIENT = "skipped without eviction"
EVICTING = "evicted"


class LoadBalancerConformance:
    """The contract of a load-balancer plugin, as pytest tests to inherit.

    Subclass it in a test module (the subclass's name must start with ``Test``) and
    provide a ``loadbalancer_factory`` fixture returning a callable that makes a new
    balancer (the class itself will do)::

        class TestMyBalancer(wool.testing.LoadBalancerConformance):
            @pytest.fixture
            def loadbalancer_factory(self):
                return MyBalancer

    The checks drive the balancer's ``dispatch(task, context)`` against real wool
    workers served in this process on 127.0.0.1, against rogue gRPC servers that fail
    every call with a chosen status code, and against workers whose admission hook
    refuses tasks. Each check runs in an event loop of its own, so the suite needs no
    pytest plugin; ``timeout`` bounds each check. Override a check to skip it (say why).

    The contract: a dispatch returns the ``RemoteCall`` of the first worker that accepts
    the task, taking workers from ``context.workers`` on every dispatch; after a
    ``TransientDispatchError`` (gRPC ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``,
    ``DEADLINE_EXCEEDED``, or a worker refusing the task) it tries another worker and
    keeps this one; after any other ``DispatchError`` it calls ``context.evict(worker)``
    and tries another; once every worker has failed (or there is none) it raises
    ``NoWorkersAvailable``. It pickles with cloudpickle, because every task carries a copy
    for the nested dispatches of its routine.
    """

    timeout: float = 30.0
    dispatches: int = 6
    """How many tasks each check sends where one is not enough."""

    # -- the checks -----------------------------------------------------------------

    def test_it_is_a_load_balancer(self, loadbalancer_factory: LoadBalancerFactory):
        balancer = loadbalancer_factory()
        check(
            isinstance(balancer, LoadBalancerLike),
            f"{balancer!r} has no async dispatch(task, context) (wool.LoadBalancerLike)",
        )

    def test_tasks_run_on_the_workers_of_the_context(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with _workers(3) as workers, RecordingContext(workers) as context:
                for i in range(3 * self.dispatches):
                    call = await self._dispatch(balancer, context, _routines.add, i, 1)
                    check(
                        call.worker in workers,
                        f"dispatch returned a call on {call.worker}, not a worker of the context",
                    )
                    result = await call.result()
                    check(result == i + 1, f"add({i}, 1) returned {result!r}")
                check(not context.evicted, f"healthy workers were evicted: {context.evicted}")

        self._run(body(), "dispatch to healthy workers")

    def test_concurrent_dispatches_all_succeed(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with _workers(3) as workers, RecordingContext(workers) as context:
                calls = await asyncio.gather(
                    *(
                        self._dispatch(balancer, context, _routines.add, i, i)
                        for i in range(8 * self.dispatches)
                    )
                )
                results = await asyncio.gather(*(call.result() for call in calls))
                check(
                    results == [2 * i for i in range(8 * self.dispatches)],
                    f"concurrent dispatches returned {results}",
                )
                check(not context.evicted, f"healthy workers were evicted: {context.evicted}")

        self._run(body(), "concurrent dispatches")

    def test_unavailable_is_transient(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(
                loadbalancer_factory, _rogue(grpc.StatusCode.UNAVAILABLE), TRANSIENT
            ),
            "UNAVAILABLE is transient",
        )

    def test_resource_exhausted_is_transient(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(
                loadbalancer_factory, _rogue(grpc.StatusCode.RESOURCE_EXHAUSTED), TRANSIENT
            ),
            "RESOURCE_EXHAUSTED is transient",
        )

    def test_deadline_exceeded_is_transient(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(
                loadbalancer_factory, _rogue(grpc.StatusCode.DEADLINE_EXCEEDED), TRANSIENT
            ),
            "DEADLINE_EXCEEDED is transient",
        )

    def test_a_worker_refusing_the_task_is_transient(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        self._run(
            self._check_failure(loadbalancer_factory, _refusing_worker, TRANSIENT),
            "a refusal by the admission hook is transient",
        )

    def test_internal_error_evicts(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(loadbalancer_factory, _rogue(grpc.StatusCode.INTERNAL), EVICTING),
            "INTERNAL evicts",
        )

    def test_permission_denied_evicts(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(
                loadbalancer_factory, _rogue(grpc.StatusCode.PERMISSION_DENIED), EVICTING
            ),
            "PERMISSION_DENIED evicts",
        )

    def test_unimplemented_evicts(self, loadbalancer_factory: LoadBalancerFactory):
        self._run(
            self._check_failure(
                loadbalancer_factory, _rogue(grpc.StatusCode.UNIMPLEMENTED), EVICTING
            ),
            "UNIMPLEMENTED (a server that is no wool worker) evicts",
        )

    def test_no_workers_available_once_every_worker_failed(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with contextlib.AsyncExitStack() as stack:
                unavailable = RogueWorker(grpc.StatusCode.UNAVAILABLE)
                internal = RogueWorker(grpc.StatusCode.INTERNAL)
                refuser_worker = InProcessWorker()
                workers = [
                    await stack.enter_async_context(unavailable),
                    await stack.enter_async_context(internal),
                    await stack.enter_async_context(refuser_worker),
                ]
                refuser = stack.enter_context(refusing(refuser_worker.uid))
                context = await stack.enter_async_context(RecordingContext(workers))
                await self._expect_no_workers(balancer, context)
                check(
                    unavailable.sessions >= 1 and internal.sessions >= 1,
                    "NoWorkersAvailable was raised before every worker was tried "
                    f"(UNAVAILABLE tried {unavailable.sessions}x, INTERNAL {internal.sessions}x)",
                )
                check(
                    refuser.refusals[refuser_worker.uid] >= 1,
                    "NoWorkersAvailable was raised before the refusing worker was tried",
                )
                evicted = {m.uid for m in context.evicted}
                check(
                    evicted == {internal.uid},
                    f"only the INTERNAL worker should be evicted; evicted: {sorted(evicted)}",
                )

        self._run(body(), "NoWorkersAvailable after every worker failed")

    def test_an_empty_context_raises_no_workers_available(
        self, loadbalancer_factory: LoadBalancerFactory
    ):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with RecordingContext([]) as context:
                await self._expect_no_workers(balancer, context)

        self._run(body(), "NoWorkersAvailable without workers")

    def test_a_routine_error_is_not_a_worker_fault(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with _workers(2) as workers, RecordingContext(workers) as context:
                for _ in range(self.dispatches):
                    call = await self._dispatch(balancer, context, _routines.fail, "by design")
                    try:
                        await call.result()
                    except _routines.KitError:
                        pass
                    else:
                        fail("the routine's own exception did not reach the caller")
                check(
                    not context.evicted,
                    f"a routine's exception got its worker evicted: {context.evicted}",
                )
                call = await self._dispatch(balancer, context, _routines.add, 1, 1)
                check(await call.result() == 2, "the workers stopped working")

        self._run(body(), "routine errors are not worker faults")

    def test_dispatch_follows_the_context(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with _workers(3) as workers, RecordingContext(workers) as context:
                for i in range(self.dispatches):
                    await (await self._dispatch(balancer, context, _routines.add, i, 0)).result()
                gone = [workers[0], workers[1]]
                for worker in gone:
                    context.remove(worker)
                for i in range(self.dispatches):
                    call = await self._dispatch(balancer, context, _routines.add, i, 0)
                    check(
                        call.worker == workers[2],
                        f"dispatched to {call.worker.uid} after discovery dropped it; the "
                        "balancer must take its workers from context.workers on every dispatch",
                    )
                    await call.result()

        self._run(body(), "dispatch follows context.workers")

    def test_it_pickles_for_nested_dispatch(self, loadbalancer_factory: LoadBalancerFactory):
        async def body() -> None:
            balancer = loadbalancer_factory()
            async with _workers(2) as workers:
                async with RecordingContext(workers) as context:
                    await (await self._dispatch(balancer, context, _routines.add, 1, 2)).result()
                    copy = _roundtrip(balancer)
                    check(
                        isinstance(copy, LoadBalancerLike),
                        f"the unpickled balancer {copy!r} is not a LoadBalancerLike",
                    )
                    for i in range(self.dispatches):
                        call = await self._dispatch(copy, context, _routines.add, i, i)
                        check(await call.result() == 2 * i, "the unpickled balancer misroutes")
                # The real path: the task carries the proxy, the worker dispatches through
                # its own unpickled copy of the proxy and of the balancer.
                proxy = WorkerProxy(StaticSubscriber(workers), _roundtrip(balancer))
                await proxy.start()
                token = current_proxy.set(proxy)
                try:
                    await proxy.wait_for([w.uid for w in workers], timeout=self.timeout)
                    results = [await _routines.nested_add(i, 1) for i in range(self.dispatches)]
                    check(
                        results == [i + 1 for i in range(self.dispatches)],
                        f"nested dispatch returned {results}",
                    )
                finally:
                    current_proxy.reset(token)
                    await proxy.stop()

        self._run(body(), "pickling for nested dispatch")

    # -- helpers --------------------------------------------------------------------

    def _run(self, body: Coroutine[Any, Any, None], what: str) -> None:
        run(body, self.timeout, what)

    async def _dispatch(
        self,
        balancer: LoadBalancerLike,
        context: RecordingContext,
        routine: Callable[..., Any],
        *args: Any,
    ) -> RemoteCall:
        proxy = WorkerProxy(StaticSubscriber(context.workers), balancer)
        _roundtrip(balancer)  # a pool pickles its proxy up front: fail as clearly
        task = Task(
            routine=routine.__qualname__,
            callable=routine,
            args=args,
            kwargs={},
            proxy=proxy,
        )
        call = await balancer.dispatch(task, context)
        check(
            isinstance(call, RemoteCall),
            f"dispatch must return the wool.RemoteCall of the accepting worker; got {call!r}",
        )
        return call

    async def _expect_no_workers(self, balancer: LoadBalancerLike, context: RecordingContext):
        try:
            call = await self._dispatch(balancer, context, _routines.add, 1, 1)
        except NoWorkersAvailable:
            return
        except Exception as exc:
            fail(f"expected wool.NoWorkersAvailable, got {type(exc).__name__}: {exc}")
        fail(f"expected wool.NoWorkersAvailable, but {call.worker.uid} took the task")

    async def _check_failure(
        self,
        loadbalancer_factory: LoadBalancerFactory,
        failing: Callable[[contextlib.AsyncExitStack], Coroutine[Any, Any, _Failing]],
        expected: str,
    ) -> None:
        async with contextlib.AsyncExitStack() as stack:
            bad = await failing(stack)
            healthy = await stack.enter_async_context(_workers(2))
            # Alone, the failing worker must be tried, then NoWorkersAvailable raised.
            balancer = loadbalancer_factory()
            alone = await stack.enter_async_context(RecordingContext([bad.metadata]))
            await self._expect_no_workers(balancer, alone)
            check(bad.attempts() >= 1, f"{bad.what} was never tried")
            self._check_eviction(bad, alone, expected)
            # Among healthy workers, every task still runs.
            balancer = loadbalancer_factory()
            for order in ([bad.metadata, *healthy], [*healthy, bad.metadata]):
                context = await stack.enter_async_context(RecordingContext(order))
                tried = bad.attempts()
                for i in range(self.dispatches):
                    call = await self._dispatch(balancer, context, _routines.add, i, 1)
                    check(
                        call.worker in healthy,
                        f"the call ran on {call.worker.uid}, which should have failed",
                    )
                    check(await call.result() == i + 1, "a dispatched task returned a wrong result")
                if bad.attempts() > tried:
                    self._check_eviction(bad, context, expected)

    def _check_eviction(self, bad: _Failing, context: RecordingContext, expected: str) -> None:
        evicted = [m.uid for m in context.evicted]
        healthy_evicted = [uid for uid in evicted if uid != bad.metadata.uid]
        check(not healthy_evicted, f"healthy workers were evicted: {healthy_evicted}")
        if expected == TRANSIENT:
            check(
                bad.metadata.uid not in evicted,
                f"{bad.what} fails transiently: the balancer must try another worker and "
                "keep this one, but it evicted it",
            )
        else:
            check(
                bad.metadata.uid in evicted,
                f"{bad.what} fails for good: the balancer must call context.evict() on it",
            )


class _Failing:
    """A worker that fails every dispatch, and how to count the attempts."""

    def __init__(self, metadata: WorkerMetadata, what: str, attempts: Callable[[], int]):
        self.metadata = metadata
        self.what = what
        self.attempts = attempts


def _rogue(
    code: grpc.StatusCode,
) -> Callable[[contextlib.AsyncExitStack], Coroutine[Any, Any, _Failing]]:
    async def start(stack: contextlib.AsyncExitStack) -> _Failing:
        rogue = RogueWorker(code)
        metadata = await stack.enter_async_context(rogue)
        return _Failing(metadata, f"a worker failing with {code.name}", lambda: rogue.sessions)

    return start


async def _refusing_worker(stack: contextlib.AsyncExitStack) -> _Failing:
    worker = InProcessWorker()
    metadata = await stack.enter_async_context(worker)
    refuser: AdmissionRefuser = stack.enter_context(refusing(worker.uid))
    return _Failing(
        metadata, "a worker refusing tasks (wool_admit_task)", lambda: refuser.refusals[worker.uid]
    )


@contextlib.asynccontextmanager
async def _workers(count: int) -> AsyncIterator[Sequence[WorkerMetadata]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(InProcessWorker()) for _ in range(count)]


def _roundtrip(balancer: LoadBalancerLike) -> LoadBalancerLike:
    try:
        return cloudpickle.loads(cloudpickle.dumps(balancer))
    except Exception as exc:
        fail(
            "the balancer must pickle with cloudpickle (every task carries a copy for nested "
            f"dispatch): {type(exc).__name__}: {exc}"
        )
