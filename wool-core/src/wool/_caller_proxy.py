"""The proxy a pool dispatches through: follows discovery, holds connections, asks the balancer."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from wool import _log_limit, _serialization
from wool._caller_candidates import CandidateSet
from wool._caller_connection import CallerConnection, RemoteCall
from wool._caller_dispatch import first_accepting
from wool._caller_slots import Slots
from wool._credentials import nested_call_credentials, unpickled_on_worker
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


class CallerProxy:
    """Routes tasks to the workers a discovery subscriber announces.

    ``max_in_flight`` bounds the calls in flight through this proxy (more wait their turn);
    copies on workers are unbounded, since a nested call must never wait for a slot its
    own ancestors hold. Only workers whose tags include all of ``tags`` and whose
    ``secure`` flag matches the presence of ``credentials`` are used. The proxy pickles to
    its configuration, so a worker that receives it can dispatch nested routines through
    its own copy; the credentials stay behind, and a worker's copy connects with the
    credentials that worker serves with. ``standby``: see ``wool.WorkerPool``.
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
        forward_logs: int | None = None,
        standby: bool = False,
    ) -> None:
        self.id = id or uuid.uuid4().hex
        self.standby = standby
        """Whether a full worker may be sent one more call to start once a slot frees
        (when more calls wait than there are workers)."""
        self.forward_logs = forward_logs
        """The lowest level of the log records workers send back for calls made through
        this proxy (and its copies on workers); None: workers keep them."""
        self.tags = frozenset(tags)
        self.subscriber = subscriber
        self.loadbalancer = loadbalancer
        self.credentials = credentials
        self.wait_for_workers = wait_for_workers
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        """Calls dispatched through this proxy that have not finished yet."""
        self.absence_note: Callable[[], str] | None = None
        """Says why the workers a pool spawned may be missing (for NoWorkersAvailable)."""
        self._calls: set[RemoteCall] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._mismatched: dict[str, WorkerMetadata] = {}
        self._slots = Slots(max_in_flight) if max_in_flight else None
        # A worker keeps many proxies (one per caller pool); gRPC's channels to one address
        # share a connection, a session socket each would take one per proxy and worker.
        self._context = CandidateSet(standby=standby, socket_sessions=not unpickled_on_worker())
        self._follower: asyncio.Task[None] | None = None
        self._pickled: bytes | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __reduce__(self) -> tuple[Any, ...]:
        # No credentials travel, only whether they exist: key material stays here, and a
        # worker that restores the proxy connects with its own (see _restore).
        credentials = self.credentials
        return (
            _restore,
            (
                self.id,
                self.subscriber,
                self.loadbalancer,
                credentials is not None,
                credentials.server_name if credentials is not None else None,
                sorted(self.tags),
                self.wait_for_workers,
                self.forward_logs,
                self.standby,
            ),
        )

    def pickled(self) -> bytes:
        """This proxy pickled once, as every task carries it."""
        if self._pickled is None:
            self._pickled = _serialization.dumps(self)
        return self._pickled

    @property
    def workers(self) -> Mapping[WorkerMetadata, CallerConnection]:
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

    async def wait_for(self, uids: Iterable[str], timeout: float) -> None:  # noqa: ASYNC109 (public API: TimeoutError names the wait)
        """Wait until every worker in ``uids`` is routable; ``TimeoutError`` otherwise."""
        wanted = set(uids)
        await self.wait_until(lambda workers: wanted <= {m.uid for m in workers}, timeout)

    async def wait_until(
        self,
        predicate: Callable[[Mapping[WorkerMetadata, CallerConnection]], bool],
        timeout: float,  # noqa: ASYNC109 (public API: TimeoutError names the wait)
    ) -> None:
        """Wait until ``predicate(self.workers)`` holds; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout):
            await self._context.wait(lambda: predicate(self._context.workers))

    async def dispatch(self, task: Task) -> RemoteCall:
        """Route ``task`` to the first worker, in the load balancer's order, that takes it."""
        if self._follower is None:
            await self.start()
        if not self._context.workers:
            try:
                async with asyncio.timeout(self.wait_for_workers):
                    await self._context.wait(lambda: bool(self._context.workers))
            except TimeoutError:
                raise NoWorkersAvailable(
                    f"no worker became available for {task.routine}() within "
                    f"{self.wait_for_workers:g}s{self._filter_text()}{self._absence_text()}"
                ) from None
        if self._slots is not None:
            if self._slots.exhausted:
                log.info(
                    "%d calls in flight (the limit); %s() waits for one to finish",
                    self.in_flight,
                    task.routine,
                )
            waiter = self._slots.enqueue()
            if waiter is not None:
                try:
                    await waiter  # a releaser hands its slot over
                except asyncio.CancelledError:
                    self._slots.cancelled(waiter)
                    raise
        self.in_flight += 1
        self._idle.clear()
        scope = _log_limit.scope.set(self.id)  # the sessions opened now log as this pool's
        try:
            call, on_worker_finished = await first_accepting(task, self.loadbalancer, self._context)
        except NoWorkersAvailable as exc:
            self._finished()
            absence = self._absence_text()  # e.g. the pool's own workers died
            if absence:
                raise NoWorkersAvailable(f"{exc}{absence}") from None
            raise
        except BaseException:
            self._finished()
            raise
        finally:
            _log_limit.scope.reset(scope)
        self._calls.add(call)
        call.on_finish = _Finished(self, call, on_worker_finished)
        return call

    def _finished(self, call: RemoteCall | None = None) -> None:
        self.in_flight -= 1
        self._calls.discard(call)  # type: ignore[arg-type]
        if not self.in_flight:
            self._idle.set()
        if self._slots is not None:
            self._slots.release()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 (False after it: an answer, not a cancellation)
        """Wait up to ``timeout`` seconds until no call is in flight; False if some still are."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def abandon(self, error: Callable[[RemoteCall], BaseException]) -> None:
        """Cancel every call in flight on its worker; its caller gets ``error(call)``."""
        for call in list(self._calls):
            call.abandon(error(call))

    def _absence_text(self) -> str:
        notes = [note] if self.absence_note and (note := self.absence_note()) else []
        secure = self.credentials is not None
        others = [m for m in self._mismatched.values() if m.secure != secure]
        if others:
            if secure:
                notes.append(
                    f"{len(others)} plaintext worker(s) exist, but this pool has credentials= "
                    "and uses TLS workers only"
                )
            else:
                notes.append(
                    f"{len(others)} TLS worker(s) exist, but this pool has no credentials=: "
                    "give it wool.WorkerCredentials to use them"
                )
        return "".join(f"; {note}" for note in notes)

    def _filter_text(self) -> str:
        parts: list[str] = []
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
        self._mismatched.pop(metadata.uid, None)
        secure = self.credentials is not None
        if (
            event.type != "worker-dropped"
            and self.tags <= metadata.tags
            and metadata.secure != secure
        ):
            self._mismatched[metadata.uid] = metadata
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
    secure: bool,
    server_name: str | None,
    tags: list[str],
    wait_for_workers: float,
    forward_logs: int | None = None,
    standby: bool = False,
) -> CallerProxy:
    """The proxy a worker's routines dispatch nested calls through: a TLS pool's connects
    with the worker's own credentials (raises ``ValueError`` where there are none)."""
    return CallerProxy(
        subscriber,
        loadbalancer,
        credentials=nested_call_credentials(server_name) if secure else None,
        tags=tags,
        wait_for_workers=wait_for_workers,
        id=id,
        forward_logs=forward_logs,
        standby=standby,
    )


class _Finished:
    """What a call does when it ends: its worker's count, then this proxy's (an object
    rather than a closure: one lives with each pending call)."""

    __slots__ = ("_call", "_on_worker_finished", "_proxy")

    def __init__(
        self, proxy: CallerProxy, call: RemoteCall, on_worker_finished: Callable[[], None]
    ) -> None:
        self._proxy = proxy
        self._call = call
        self._on_worker_finished = on_worker_finished

    def __call__(self) -> None:
        self._on_worker_finished()
        self._proxy._finished(self._call)  # pyright: ignore[reportPrivateUsage]
