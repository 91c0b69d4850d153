"""An in-process pool: real workers in this process, and routines dispatching to them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextvars import Token
from typing import Any

from wool._caller_proxy import CallerProxy
from wool._metadata import WorkerMetadata
from wool._pool import DEFAULT_LOADBALANCER, resolve_loadbalancer
from wool._protocols import LoadBalancerLike
from wool._task import current_proxy
from wool.testing._balancing import StaticSubscriber
from wool.testing._workers import InProcessWorker


class InProcessPool:
    """``size`` real wool workers served in this process, as the pool routines use.

    ::

        async with wool.testing.InProcessPool(2) as pool:
            assert await my_routine() == 42  # ran on one of pool.workers

    Inside the block, routines dispatch to these workers (like inside a
    ``wool.WorkerPool``), through ``loadbalancer`` (an instance, a class or the name of
    an installed plugin). The workers run in this event loop, so the routines must be
    importable here and hooks registered in this process apply to them; nothing is
    spawned, which makes it quick. ``workers`` holds their metadata, ``proxy`` the
    ``wool.CallerProxy`` the routines go through. ``others`` are more workers to route
    to, announced before these (a :class:`RogueWorker`'s metadata, say). ``concurrency``
    bounds the calls each of these workers runs at once; ``standby`` is the proxy's
    (as ``wool.WorkerPool``'s).
    """

    def __init__(
        self,
        size: int = 1,
        *tags: str,
        loadbalancer: LoadBalancerLike | str | type = DEFAULT_LOADBALANCER,
        others: Iterable[WorkerMetadata] = (),
        timeout: float = 10.0,
        concurrency: int | None = None,
        standby: bool = False,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.size = size
        self.tags = frozenset(tags)
        self.timeout = timeout
        self.concurrency = concurrency
        self.standby = standby
        self._loadbalancer = loadbalancer
        self.others = tuple(others)
        self.workers: list[WorkerMetadata] = []
        """The metadata of the workers, in start order (once entered)."""
        self._proxy: CallerProxy | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._token: Token[CallerProxy | None] | None = None

    @property
    def proxy(self) -> CallerProxy:
        """The proxy routines dispatch through inside the block."""
        if self._proxy is None:
            raise RuntimeError("the in-process pool is not entered")
        return self._proxy

    async def __aenter__(self) -> InProcessPool:
        if self._stack is not None:
            raise RuntimeError("this InProcessPool is already entered; create a new one")
        balancer = resolve_loadbalancer(self._loadbalancer)
        stack = contextlib.AsyncExitStack()
        try:
            workers = [
                await stack.enter_async_context(
                    InProcessWorker(*self.tags, concurrency=self.concurrency)
                )
                for _ in range(self.size)
            ]
            everyone = [*self.others, *workers]
            proxy = CallerProxy(
                StaticSubscriber(everyone), balancer, tags=self.tags, standby=self.standby
            )
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            await proxy.wait_for([w.uid for w in everyone], timeout=self.timeout)
        except BaseException:
            await stack.aclose()
            raise
        self.workers = workers
        self._proxy = proxy
        self._stack = stack
        self._token = current_proxy.set(proxy)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if self._token is not None:
            with contextlib.suppress(ValueError):
                current_proxy.reset(self._token)
            self._token = None
        self._proxy = None
        if stack is not None:
            await stack.aclose()
