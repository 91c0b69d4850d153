"""The proxy a pool dispatches through: follows discovery, holds connections, asks the balancer."""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from wool import _log_limit, _serialization
from wool._backoff import Pauses, PausingConnection
from wool._connection import RemoteCall, WorkerConnection
from wool._errors import NoWorkersAvailable
from wool._metadata import DiscoveryEvent, WorkerMetadata

if TYPE_CHECKING:
    from wool._credentials import WorkerCredentials
    from wool._protocols import DiscoverySubscriberLike, LoadBalancerLike
    from wool._task import Task

log = logging.getLogger("wool.proxy")
_log_limit.install(log, logging.getLogger("wool.connection"))

DROPPED_WORKER_DRAIN_SECONDS = 10.0
"""How long calls in flight on a worker that left discovery may still finish there: a
stopping worker finishes them within its grace period; an unreachable one never will."""


class WorkerProxy:
    """Routes tasks to the workers a discovery subscriber announces.

    ``max_in_flight`` bounds the calls in flight through this proxy (more wait their turn);
    copies on workers are unbounded, since a nested call must never wait for a slot its
    own ancestors hold. Only workers whose tags include all of ``tags`` and whose
    ``secure`` flag matches the presence of ``credentials`` are used. The proxy pickles to
    its configuration, so a worker that receives it can dispatch nested routines through
    its own copy.
    """

    def __init__(
        self,
        subscriber: DiscoverySubscriberLike,
        loadbalancer: LoadBalancerLike,
        *,
        credentials: WorkerCredentials | None = None,
        tags: Iterable[str] = (),
        wait_for_workers: float = 10.0,
        max_in_flight: int | None = None,
        id: str | None = None,
    ) -> None:
        self.id = id or uuid.uuid4().hex
        self.tags = frozenset(tags)
        self.subscriber = subscriber
        self.loadbalancer = loadbalancer
        self.credentials = credentials
        self.wait_for_workers = wait_for_workers
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        """Calls dispatched through this proxy that have not finished yet."""
        self._slots = _Slots(max_in_flight) if max_in_flight else None
        self._context = _WorkerSet()
        self._follower: asyncio.Task[None] | None = None
        self._pickled: bytes | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _restore,
            (
                self.id,
                self.subscriber,
                self.loadbalancer,
                self.credentials,
                sorted(self.tags),
                self.wait_for_workers,
            ),
        )

    def pickled(self) -> bytes:
        """This proxy pickled once, as every task carries it."""
        if self._pickled is None:
            self._pickled = _serialization.dumps(self)
        return self._pickled

    @property
    def workers(self) -> Mapping[WorkerMetadata, WorkerConnection]:
        """The workers tasks may be routed to now."""
        return self._context.workers

    async def start(self) -> None:
        """Begin following discovery (idempotent)."""
        if self._follower is None:
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following discovery and close every connection."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        connections = self._context.clear()
        await asyncio.gather(
            *(c.close() for c in connections), *self._closing, return_exceptions=True
        )

    async def wait_for(self, uids: Iterable[str], timeout: float) -> None:
        """Wait until every worker in ``uids`` is routable; ``TimeoutError`` otherwise."""
        wanted = set(uids)
        await self.wait_until(lambda workers: wanted <= {m.uid for m in workers}, timeout)

    async def wait_until(
        self, predicate: Callable[[Mapping[WorkerMetadata, WorkerConnection]], bool], timeout: float
    ) -> None:
        """Wait until ``predicate(self.workers)`` holds; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout):
            await self._context.wait(lambda: predicate(self._context.workers))

    async def dispatch(self, task: Task) -> RemoteCall:
        """Route ``task`` to a worker through the load balancer."""
        if self._follower is None:
            await self.start()
        if not self._context.workers:
            try:
                async with asyncio.timeout(self.wait_for_workers):
                    await self._context.wait(lambda: bool(self._context.workers))
            except TimeoutError:
                raise NoWorkersAvailable(
                    f"no worker became available for {task.routine}() within "
                    f"{self.wait_for_workers:g}s{self._filter_text()}"
                ) from None
        if self._slots is not None:
            if self._slots.exhausted:
                log.info(
                    "%d calls in flight (the limit); %s() waits for one to finish",
                    self.in_flight,
                    task.routine,
                )
            await self._slots.acquire()
        self.in_flight += 1
        scope = _log_limit.scope.set(self.id)  # the sessions opened now log as this pool's
        try:
            call = await self.loadbalancer.dispatch(task, self._context)
        except BaseException:
            self._finished()
            raise
        finally:
            _log_limit.scope.reset(scope)
        call.on_finish = self._finished
        return call

    def _finished(self) -> None:
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    def _filter_text(self) -> str:
        parts = []
        if self.tags:
            parts.append(f"tags {sorted(self.tags)}")
        parts.append("TLS" if self.credentials else "plaintext")
        return " (looking for workers with " + ", ".join(parts) + ")"

    def _wanted(self, metadata: WorkerMetadata) -> bool:
        return self.tags <= metadata.tags and metadata.secure == (self.credentials is not None)

    async def _follow(self) -> None:
        iterator = aiter(self.subscriber)
        try:
            async for event in iterator:
                self._apply(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("discovery subscriber %r failed; keeping known workers", self.subscriber)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await asyncio.shield(close())

    def _apply(self, event: DiscoveryEvent) -> None:
        metadata = event.metadata
        if event.type == "worker-dropped" or not self._wanted(metadata):
            connection = self._context.remove(metadata.uid)
        else:
            connection = self._context.upsert(metadata, self.credentials)
        if connection is not None:
            closing = asyncio.get_running_loop().create_task(
                connection.close(drain=DROPPED_WORKER_DRAIN_SECONDS)
            )
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)


def _restore(
    id: str,
    subscriber: DiscoverySubscriberLike,
    loadbalancer: LoadBalancerLike,
    credentials: WorkerCredentials | None,
    tags: list[str],
    wait_for_workers: float,
) -> WorkerProxy:
    return WorkerProxy(
        subscriber,
        loadbalancer,
        credentials=credentials,
        tags=tags,
        wait_for_workers=wait_for_workers,
        id=id,
    )


class _Slots:
    """A FIFO counting semaphore whose acquire and release are O(1) with many waiters.

    (asyncio.Semaphore scans its waiters on every release: quadratic under a burst.)
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def exhausted(self) -> bool:
        return self._free == 0

    async def acquire(self) -> None:
        if self._free and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # a releaser hands its slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class _WorkerSet:
    """The load balancer's view: live workers in discovery order, minus evicted ones."""

    def __init__(self) -> None:
        self._known: dict[str, WorkerConnection] = {}
        self._evicted: set[str] = set()
        self._pauses = Pauses(self._touch)
        self._view: dict[WorkerMetadata, WorkerConnection] | None = None
        self._changed = asyncio.Condition()

    @property
    def workers(self) -> Mapping[WorkerMetadata, WorkerConnection]:
        """Live workers, without those paused after a failed connection (unless every
        one is: then trying them beats having none)."""
        if self._view is None:
            live = {c.metadata: c for uid, c in self._known.items() if uid not in self._evicted}
            ready = {m: c for m, c in live.items() if not self._pauses.paused(m.address)}
            self._view = ready or live
        return self._view

    def evict(self, worker: WorkerMetadata) -> None:
        if worker.uid in self._known:
            log.warning("evicting worker %s at %s", worker.uid, worker.address)
            self._evicted.add(worker.uid)
            self._view = None

    def upsert(
        self, metadata: WorkerMetadata, credentials: WorkerCredentials | None
    ) -> WorkerConnection | None:
        """Add or update a worker; returns a replaced connection to close, if any."""
        old = self._known.get(metadata.uid)
        stale = None
        if old is not None and old.metadata.address == metadata.address:
            old.metadata = metadata
        else:
            stale = old
            connection = PausingConnection(metadata, credentials, self._pauses)
            self._known[metadata.uid] = connection
            self._pauses.admit(connection)
        self._evicted.discard(metadata.uid)
        self._touch()
        return stale

    def remove(self, uid: str) -> WorkerConnection | None:
        connection = self._known.pop(uid, None)
        self._evicted.discard(uid)
        if connection is not None:
            self._touch()
        return connection

    def clear(self) -> list[WorkerConnection]:
        connections = list(self._known.values())
        self._known.clear()
        self._evicted.clear()
        self._pauses.close()
        self._touch()
        return connections

    def _touch(self) -> None:
        self._view = None
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Any) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)
