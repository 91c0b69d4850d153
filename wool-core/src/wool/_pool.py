"""WorkerPool: spawns local workers, follows discovery, and scopes routine dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from contextvars import Token
from types import TracebackType
from typing import Any

from wool import _plugins
from wool._credentials import WorkerCredentials
from wool._metadata import DiscoveryEvent
from wool._protocols import DiscoveryLike, DiscoveryPublisherLike, LoadBalancerLike
from wool._proxy import WorkerProxy
from wool._spawn import LocalWorker
from wool._spawned_subscriber import SpawnedFirst
from wool._task import current_proxy
from wool._worker import WILDCARDS, check_exposure

log = logging.getLogger("wool.pool")

DEFAULT_LOADBALANCER = "roundrobin"
TEARDOWN_PUBLISH_SECONDS = 5.0
DEFAULT_DISCOVERY = "local"


class WorkerPool:
    """A scope in which routines dispatch to workers.

    ========= ======== ============ ==================================================
    mode      ``size`` ``discovery`` behaviour
    ========= ======== ============ ==================================================
    default   omitted  omitted      spawns ``os.cpu_count()`` workers, private discovery
    ephemeral set      omitted      spawns ``size`` workers, private discovery
    durable   omitted  set          spawns nothing; uses the workers discovery finds
    hybrid    set      set          spawns ``size`` workers, publishes them, and uses
                                    every worker discovery finds
    ========= ======== ============ ==================================================

    ``tags`` are given to the spawned workers, and only workers carrying all of them
    receive tasks. ``discovery`` and ``loadbalancer`` take an object, a class, or the
    name of an installed plugin (``"local"``, ``"lan"``, ``"roundrobin"``, ...).
    ``credentials`` make spawned workers serve TLS and make the pool use only TLS
    workers. Spawned workers listen on a unix socket in this user's private directory,
    so that only this user's processes can reach them; with ``host`` they listen on TCP
    there and publish ``advertise`` (default: ``host``) as the address callers dial. A
    non-loopback ``host`` needs mutual TLS ``credentials``, or ``insecure=True`` to accept
    that anyone reaching it can run code as this user. ``wait_for_workers`` bounds how long
    a dispatch waits for a first worker.
    ``grace`` is how long spawned workers get to finish running tasks at exit.
    ``max_in_flight`` bounds the calls this pool has in flight at once; further calls wait
    for a slot (nested calls made by workers are not counted).
    """

    def __init__(
        self,
        *tags: str,
        size: int | None = None,
        discovery: DiscoveryLike | str | type | None = None,
        loadbalancer: LoadBalancerLike | str | type = DEFAULT_LOADBALANCER,
        credentials: WorkerCredentials | None = None,
        host: str | None = None,
        advertise: str | None = None,
        insecure: bool = False,
        wait_for_workers: float = 10.0,
        grace: float = 2.0,
        max_in_flight: int | None = 10_000,
    ) -> None:
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise TypeError(f"worker tags must be non-empty strings, got {tag!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"size must be a positive integer or None, got {size!r}")
        if credentials is not None and not isinstance(credentials, WorkerCredentials):
            raise TypeError(
                f"credentials must be a wool.WorkerCredentials, got {type(credentials).__name__}"
            )
        spawns = size is not None or discovery is None
        if credentials is not None and spawns and not credentials.can_serve:
            raise ValueError(
                "credentials without a key and certificate can connect to TLS workers but "
                "cannot serve them: give key_path and cert_path to spawn workers"
            )
        if advertise is None and host in WILDCARDS:
            raise ValueError(
                f"workers bound to {host!r} need advertise=<an address callers can reach>"
            )
        if host is None and advertise is not None:
            raise ValueError("advertise needs host=<the address workers listen on>")
        if spawns:
            check_exposure(host, credentials, insecure)
        self.tags = frozenset(tags)
        self.durable = discovery is not None and size is None
        self.size = 0 if self.durable else (size or os.cpu_count() or 1)
        self._discovery_spec = discovery
        self._loadbalancer_spec = loadbalancer
        self.credentials = credentials
        self.host = host
        self.advertise = advertise
        self.insecure = insecure
        self.wait_for_workers = wait_for_workers
        self.grace = grace
        self.max_in_flight = max_in_flight
        self.workers: list[LocalWorker] = []
        self.proxy: WorkerProxy | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._token: Token[WorkerProxy | None] | None = None

    async def __aenter__(self) -> WorkerPool:
        if self._stack is not None:
            raise RuntimeError("this WorkerPool is already entered; create a new one")
        discovery = _resolve_discovery(self._discovery_spec)
        loadbalancer = _resolve_loadbalancer(self._loadbalancer_spec)
        stack = contextlib.AsyncExitStack()
        try:
            if self.size:
                await self._spawn(stack, discovery)
            spawned = [w.metadata for w in self.workers if w.metadata is not None]
            proxy = WorkerProxy(
                SpawnedFirst(discovery.subscriber, spawned) if spawned else discovery.subscriber,
                loadbalancer,
                credentials=self.credentials,
                tags=self.tags,
                wait_for_workers=self.wait_for_workers,
                max_in_flight=self.max_in_flight,
            )
            proxy.pickled()  # fail now, not at the first dispatch, if it cannot travel
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            await proxy.wait_for((w.uid for w in self.workers), timeout=self.wait_for_workers)
        except BaseException:
            await _shielded(stack.aclose())
            raise
        self.proxy = proxy
        self._stack = stack
        self._token = current_proxy.set(proxy)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if self._token is not None:
            with contextlib.suppress(ValueError):
                current_proxy.reset(self._token)
            self._token = None
        self.proxy = None
        if stack is not None:
            await _shielded(stack.aclose())

    async def _spawn(self, stack: contextlib.AsyncExitStack, discovery: DiscoveryLike) -> None:
        publisher: DiscoveryPublisherLike = discovery.publisher
        await stack.enter_async_context(publisher)
        workers = [
            LocalWorker(
                tags=self.tags,
                host=self.host,
                advertise=self.advertise,
                credentials=self.credentials,
                insecure=self.insecure,
            )
            for _ in range(self.size)
        ]
        stack.push_async_callback(self._stop_workers, publisher, workers)
        results = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
        self.workers = workers
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        for worker in workers:
            assert worker.metadata is not None
            await publisher.publish(DiscoveryEvent("worker-added", worker.metadata))

    async def _stop_workers(
        self, publisher: DiscoveryPublisherLike, workers: list[LocalWorker]
    ) -> None:
        for worker in workers:
            if worker.metadata is not None:
                try:
                    async with asyncio.timeout(TEARDOWN_PUBLISH_SECONDS):
                        await publisher.publish(DiscoveryEvent("worker-dropped", worker.metadata))
                except Exception:
                    log.exception("could not withdraw worker %s from discovery", worker.uid)
        await asyncio.gather(*(w.stop(self.grace) for w in workers), return_exceptions=True)
        self.workers = []


async def _shielded(teardown: Any) -> None:
    """Run a teardown to the end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(teardown)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _resolve_discovery(spec: DiscoveryLike | str | type | None) -> DiscoveryLike:
    if spec is None:
        factory = _plugins.load(_plugins.DISCOVERY_GROUP, DEFAULT_DISCOVERY)
        return factory(f"pool-{uuid.uuid4().hex[:16]}")
    if isinstance(spec, str):
        spec = _plugins.load(_plugins.DISCOVERY_GROUP, spec)
    if isinstance(spec, type):
        spec = spec()
    if not isinstance(spec, DiscoveryLike):
        raise TypeError(
            f"discovery must implement wool.DiscoveryLike (publisher and subscriber), "
            f"got {type(spec).__name__}"
        )
    return spec


def _resolve_loadbalancer(spec: LoadBalancerLike | str | type) -> LoadBalancerLike:
    if isinstance(spec, str):
        spec = _plugins.load(_plugins.LOADBALANCER_GROUP, spec)
    if isinstance(spec, type):
        spec = spec()
    if not isinstance(spec, LoadBalancerLike):
        raise TypeError(
            f"loadbalancer must implement wool.LoadBalancerLike (async dispatch), "
            f"got {type(spec).__name__}"
        )
    return spec
