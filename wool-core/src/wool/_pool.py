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

from wool import _plugins, _sigterm
from wool._addresses import LOOPBACK, advertised_host, check_exposure, tls_of
from wool._caller_connection import RemoteCall
from wool._caller_log_reemit import wanted_level
from wool._caller_proxy import CallerProxy
from wool._credentials import WorkerCredentials
from wool._errors import PoolClosed
from wool._protocols import DiscoveryLike, DiscoveryPublisherLike, LoadBalancerLike
from wool._settings import DEFAULTS
from wool._supervisor import WorkerGroup
from wool._supervisor_spawn import WorkerProcess, WorkerSpec
from wool._task import current_proxy
from wool._worker_load import WorkerLoad

log = logging.getLogger("wool.pool")

DEFAULT_LOADBALANCER = "roundrobin"
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
    so that only this user's processes can reach them (on 127.0.0.1 when a hybrid pool
    publishes them through a discovery other than LocalDiscovery, whose records need
    ``host:port``); with ``host`` they listen on TCP there and publish ``advertise``
    (default: ``host``) as the address callers dial. A non-loopback ``host`` needs mutual
    TLS ``credentials``, or ``insecure=True`` to accept that anyone reaching it can run
    code as this user. ``wait_for_workers`` bounds how long a dispatch waits for a first
    worker (default 10 s).
    ``grace`` (default 2 s) is how long leaving the pool waits for the calls it still has
    in flight; the rest are cancelled and raise :class:`wool.PoolClosed`. Spawned workers
    stopped by SIGTERM get the same grace.
    ``restart`` (default True) replaces a spawned worker that dies, with a growing delay,
    until one fails to start several times in a row.
    ``max_in_flight`` (default 10,000) bounds the calls this pool has in flight at once;
    further calls wait for a slot (nested calls made by workers are not counted).
    ``forward_logs`` (default True) sends what routines log and print back to this
    process, to be emitted through its ``logging`` (see "Seeing what happens" in the README).
    ``concurrency`` bounds the calls each spawned worker runs at once (None: unbounded);
    when every worker is full, calls wait here in arrival order (see "Execution model"
    in the README).
    ``standby`` (default False): when every worker is full and more calls wait than
    there are workers, send each full worker one more call, which it starts the moment
    a slot frees (no round trip between two calls); calls then start in arrival order
    per worker only.
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
        wait_for_workers: float = DEFAULTS.wait_for_workers,
        grace: float = DEFAULTS.pool_grace,
        max_in_flight: int | None = DEFAULTS.max_in_flight,
        restart: bool = True,
        forward_logs: bool = True,
        concurrency: int | None = None,
        standby: bool = False,
    ) -> None:
        WorkerLoad(concurrency)  # a clear error for a bad limit, before anything starts
        if not isinstance(standby, bool):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise TypeError(f"standby must be True or False, got {standby!r}")
        for tag in tags:
            if not isinstance(tag, str) or not tag:  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
                raise TypeError(f"worker tags must be non-empty strings, got {tag!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise ValueError(f"size must be a positive integer or None, got {size!r}")
        if credentials is not None and not isinstance(credentials, WorkerCredentials):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise TypeError(
                f"credentials must be a wool.WorkerCredentials, got {type(credentials).__name__}"
            )
        if not isinstance(forward_logs, bool):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise TypeError(f"forward_logs must be True or False, got {forward_logs!r}")
        spawns = size is not None or discovery is None
        if credentials is not None and spawns and not credentials.can_serve:
            raise ValueError(
                "credentials without a key and certificate can connect to TLS workers but "
                "cannot serve them: give key_path and cert_path to spawn workers"
            )
        if credentials is not None:  # a certificate of the wrong usage fails here, named
            credentials.channel_credentials()
            if spawns:
                credentials.server_credentials()
        advertised_host(host, advertise)
        if spawns:
            check_exposure(host, tls_of(credentials), insecure)
        if grace < 0:
            raise ValueError(f"grace must be 0 or more seconds, got {grace!r}")
        self.id = uuid.uuid4().hex[:8]
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
        self.forward_logs = forward_logs
        self.restart = restart
        self.group: WorkerGroup | None = None
        self.concurrency = concurrency
        self.standby = standby
        self.proxy: CallerProxy | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._token: Token[CallerProxy | None] | None = None
        self._sigterm: _sigterm.Guard | None = None
        self._grace_left = grace
        """What is left of the grace for the spawned workers after the calls in flight."""

    def __repr__(self) -> str:
        return f"<WorkerPool {self.id} size={self.size} grace={self.grace:g}>"

    @property
    def workers(self) -> list[WorkerProcess]:
        """The workers this pool spawned that are running now."""
        return self.group.workers if self.group is not None else []

    async def __aenter__(self) -> WorkerPool:
        if self._stack is not None:
            raise RuntimeError("this WorkerPool is already entered; create a new one")
        discovery = _resolve_discovery(self._discovery_spec)
        loadbalancer = resolve_loadbalancer(self._loadbalancer_spec)
        stack = contextlib.AsyncExitStack()
        self._grace_left = self.grace
        self._sigterm = _sigterm.enter(self, self._on_sigterm)
        try:
            if self.size:
                await self._spawn(stack, discovery)
            proxy = CallerProxy(
                discovery.subscriber,
                loadbalancer,
                credentials=self.credentials,
                tags=self.tags,
                wait_for_workers=self.wait_for_workers,
                max_in_flight=self.max_in_flight,
                forward_logs=wanted_level() if self.forward_logs else None,
                standby=self.standby,
            )
            proxy.pickled()  # fail now, not at the first dispatch, if it cannot travel
            if self.group is not None:
                proxy.absence_note = self._absence
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            stack.push_async_callback(self._finish_calls, proxy)
            await proxy.wait_for((w.uid for w in self.workers), timeout=self.wait_for_workers)
        except BaseException:
            try:
                await _shielded(stack.aclose())
            finally:
                self._leave_sigterm()
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
        try:
            if stack is not None:
                await _shielded(stack.aclose())
        finally:
            self._leave_sigterm()

    def _on_sigterm(self) -> None:
        # Our workers may get the same SIGTERM: their exits are expected from now on.
        if self.group is not None:
            self.group.begin_stop()

    def _leave_sigterm(self) -> None:
        guard, self._sigterm = self._sigterm, None
        if guard is not None:
            guard.leave()

    async def _spawn(self, stack: contextlib.AsyncExitStack, discovery: DiscoveryLike) -> None:
        publisher: DiscoveryPublisherLike = discovery.publisher
        await stack.enter_async_context(publisher)
        spec = WorkerSpec(
            tags=self.tags,
            host=self._listen_host(discovery),
            advertise=self.advertise,
            credentials=self.credentials,
            concurrency=self.concurrency,
            insecure=self.insecure,
        )
        group = WorkerGroup(
            [spec] * self.size,
            publisher,
            grace=self.grace,
            restart=self.restart,
            label=f"the discovery of {self!r}",
        )
        self.group = group
        stack.push_async_callback(self._stop_workers, group)
        await group.start()
        await group.publish()

    def _listen_host(self, discovery: DiscoveryLike) -> str | None:
        """Where spawned workers listen: ``host`` if given; else a unix socket of this user
        (``None``), unless the pool publishes through a discovery other than
        LocalDiscovery, whose records need a TCP address: loopback then, as callers of
        this host can reach (give ``host`` and credentials to serve other hosts)."""
        if self.host is not None or self._discovery_spec is None or _host_local(discovery):
            return self.host
        return LOOPBACK

    async def _finish_calls(self, proxy: CallerProxy) -> None:
        """Give the calls in flight up to ``grace`` to finish; cancel the others."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if not await proxy.drain(self.grace):
            log.warning(
                "%r: %d call(s) still running after the grace of %g s; cancelling them",
                self,
                proxy.in_flight,
                self.grace,
            )
            proxy.abandon(self._closed_error)
        self._grace_left = max(0.0, self.grace - (loop.time() - began))

    def _closed_error(self, call: RemoteCall) -> PoolClosed:
        return PoolClosed(
            f"{call.task.routine}() was still running on worker {call.worker.uid} when "
            f"{self!r} was left, and did not finish within the pool's grace of "
            f"{self.grace:g} s: it was cancelled",
            pool=repr(self),
            grace=self.grace,
        )

    def _absence(self) -> str:
        note = self.group.absence() if self.group is not None else ""
        return f"{self!r}: {note}" if note else ""

    async def _stop_workers(self, group: WorkerGroup) -> None:
        for worker, error in await group.stop(self._grace_left):
            log.warning("could not stop worker %s: %r", worker.uid, error)
        self.group = None


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
        # The convention for the default discovery plugin: its class takes a keyword
        # ``namespace``, and pools with different namespaces never see each other.
        factory = _plugins.load(_plugins.DISCOVERY_GROUP, DEFAULT_DISCOVERY)
        return factory(namespace=f"pool-{uuid.uuid4().hex[:16]}")
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


def resolve_loadbalancer(spec: LoadBalancerLike | str | type) -> LoadBalancerLike:
    """A load balancer from an instance, a class, or the name of an installed plugin."""
    if isinstance(spec, str):
        spec = _plugins.load(_plugins.LOADBALANCER_GROUP, spec)
    if isinstance(spec, type):
        spec = spec()
    if not isinstance(spec, LoadBalancerLike):
        hint = " (dispatch(task, context) gave way to order())" if hasattr(spec, "dispatch") else ""
        raise TypeError(
            "loadbalancer must implement wool.LoadBalancerLike "
            f"(order(task, candidates)), got {type(spec).__name__}{hint}"
        )
    return spec


def _host_local(discovery: DiscoveryLike) -> bool:
    """Whether ``discovery`` is the built-in LocalDiscovery (records for this user only)."""
    try:
        local = _plugins.load(_plugins.DISCOVERY_GROUP, DEFAULT_DISCOVERY)
    except _plugins.PluginNotFound:
        return False
    return isinstance(local, type) and isinstance(discovery, local)
