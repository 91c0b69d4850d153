"""The caller proxies a worker keeps for nested calls: bounded, idle ones stopped.

Each task carries its caller's proxy; a worker unpickles a proxy once and reuses it for
every task that carries the same one. A proxy is in use while a task that came with it
runs there (its nested calls go through it); one no task uses is idle, and is stopped
after ``settings.proxy_idle`` seconds or when more than ``settings.proxy_cache_size``
are idle (the least recently used first). A proxy in use is never stopped. The proxies
share one discovery subscription per distinct subscriber (:mod:`wool._worker_shared_discovery`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

import attrs

from wool import _serialization, _settings
from wool._caller_proxy import CallerProxy
from wool._credentials import WorkerCredentials, serving_as
from wool._worker_shared_discovery import SharedSubscriptions

log = logging.getLogger("wool.worker")


@attrs.define
class _Entry:
    proxy: CallerProxy
    users: int = 0
    idle_since: float = 0.0


class ProxyCache:
    """The proxies of one worker, keyed by their pickled bytes."""

    def __init__(
        self,
        credentials: WorkerCredentials | None = None,
        *,
        size: int | None = None,
        idle_seconds: float | None = None,
    ) -> None:
        settings = _settings.current()
        self.credentials = credentials
        """What the worker serves with: the identity of its routines' nested calls."""
        self.size = settings.proxy_cache_size if size is None else size
        self.idle_seconds = settings.proxy_idle if idle_seconds is None else idle_seconds
        self.subscriptions = SharedSubscriptions()
        self._entries: collections.OrderedDict[bytes, _Entry] = collections.OrderedDict()
        self._stopping: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def acquire(self, data: bytes) -> CallerProxy:
        """The proxy pickled as ``data``, counted in use until :meth:`release`."""
        entry = self._entries.get(data)
        if entry is None:
            with serving_as(self.credentials):
                proxy = _serialization.loads(data)
            if not isinstance(proxy, CallerProxy):
                kind = type(proxy).__qualname__
                raise TypeError(f"malformed task: its proxy is a {kind}, not a wool proxy")
            proxy.subscriber = self.subscriptions.share(proxy.subscriber)
            # Nested tasks carry the very bytes the caller sent (the cache key elsewhere).
            proxy._pickled = data  # pyright: ignore[reportPrivateUsage]
            entry = self._entries[data] = _Entry(proxy)
        self._entries.move_to_end(data)
        entry.users += 1
        return entry.proxy

    def release(self, data: bytes) -> None:
        """A task that came with the proxy pickled as ``data`` ended."""
        entry = self._entries.get(data)
        if entry is None:
            return
        entry.users -= 1
        if entry.users == 0:
            entry.idle_since = time.monotonic()
            if len(self._entries) > self.size or self.idle_seconds <= 0:
                self._evict()
            elif self._sweep is None:
                # A sweep already due is due no later than this entry's idle limit.
                self._schedule_sweep()

    def _evict(self) -> None:
        now = time.monotonic()
        idle = [(key, e) for key, e in self._entries.items() if e.users == 0]  # LRU first
        surplus = len(idle) - self.size
        for key, entry in idle:
            if surplus > 0 or now - entry.idle_since >= self.idle_seconds:
                surplus -= 1
                del self._entries[key]
                self._stop(entry.proxy)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle = [e.idle_since for e in self._entries.values() if e.users == 0]
        if idle:
            delay = max(0.0, min(idle) + self.idle_seconds - time.monotonic())
            self._sweep = asyncio.get_running_loop().call_later(delay, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self._evict()

    def _stop(self, proxy: CallerProxy) -> None:
        task = asyncio.get_running_loop().create_task(proxy.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def stopped(self) -> None:
        """Wait until the proxies evicted so far have stopped."""
        await asyncio.gather(*self._stopping, return_exceptions=True)

    async def close(self) -> None:
        """Stop every proxy and subscription."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        entries, self._entries = list(self._entries.values()), collections.OrderedDict()
        await asyncio.gather(
            *(e.proxy.stop() for e in entries), *self._stopping, return_exceptions=True
        )
        await self.subscriptions.close()
