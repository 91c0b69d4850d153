"""The publisher: registers one DNS-SD service per worker with zeroconf."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from wool import DiscoveryEvent, WorkerMetadata
from wool.plugins import DiscoveryPublisher
from wool_discovery_lan import _interfaces
from wool_discovery_lan._liveness import ExitWatch
from wool_discovery_lan._records import address_literal, encode_txt, server_name, service_name

log = logging.getLogger(__name__)

GOODBYE_TIMEOUT = 5.0
"""How long leaving the publisher waits for its goodbye packets to go out."""


class LanPublisher(DiscoveryPublisher[AsyncZeroconf]):
    """Publishes workers as DNS-SD services; use as ``async with publisher as p``.

    Entering opens a zeroconf responder on the configured interfaces. ``worker-added``
    registers the worker's service (``<uid>.<service_type>``: PTR, SRV, TXT and an A or
    AAAA record for the host of its address), replacing any earlier registration of the
    same uid; ``worker-updated`` re-registers it with new records (registering it if
    absent); ``worker-dropped`` unregisters it, which sends goodbye packets. Leaving the
    context unregisters every worker still published, waits (a bounded time) for the
    goodbyes to go out, and closes the responder. Records carry ``ttl`` seconds;
    subscribers drop a worker whose records expire without being refreshed.

    A worker whose process (``metadata.pid``, on this host) exits while it is published
    is unregistered at once, so callers stop dialling a dead address (Linux, through a
    pidfd; elsewhere it stays published until it is dropped or the publisher leaves).

    Names come from uids, which are unique, so registration skips the probing step of
    RFC 6762 (which would cost about a second per worker). A publisher can be entered
    again after it is left, but not twice at once.
    """

    def __init__(self, service_type: str, interfaces: tuple[str, ...] | None, ttl: int) -> None:
        self.service_type = service_type
        self.interfaces = interfaces
        self.ttl = ttl
        self._infos: dict[str, AsyncServiceInfo] = {}
        # service key -> its announcements or goodbyes still being sent
        self._broadcasts: dict[str, asyncio.Future[object]] = {}
        self._goodbyes: set[asyncio.Future[object]] = set()
        self._lock = asyncio.Lock()
        self._exits: ExitWatch | None = None
        self._withdrawing: set[asyncio.Task[None]] = set()
        self._seq = 0

    async def _open(self) -> AsyncZeroconf:
        addresses = _interfaces.resolve(self.interfaces)
        zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        self._lock = asyncio.Lock()
        self._exits = ExitWatch(asyncio.get_running_loop(), self._exited)
        return zeroconf

    async def _close(self, zeroconf: AsyncZeroconf) -> None:
        for task in list(self._withdrawing):
            task.cancel()
        await asyncio.gather(*self._withdrawing, return_exceptions=True)
        infos, self._infos = list(self._infos.values()), {}
        if self._exits is not None:
            self._exits.close()
            self._exits = None
        try:
            for info in infos:
                self._cancel(info.key)
                self._goodbye(info.key, await zeroconf.async_unregister_service(info))
            for key, future in list(self._broadcasts.items()):
                if future not in self._goodbyes:
                    self._cancel(key)
            if self._goodbyes:
                async with asyncio.timeout(GOODBYE_TIMEOUT):
                    await asyncio.gather(*self._goodbyes, return_exceptions=True)
        except Exception as exc:
            log.warning("could not withdraw workers from %s: %s", self.service_type, exc)
        finally:
            for key in list(self._broadcasts):
                self._cancel(key)
            await zeroconf.async_close()

    async def _apply(self, zeroconf: AsyncZeroconf, event: DiscoveryEvent) -> None:
        """Register, re-register or unregister the worker of ``event``.

        Raises ``ValueError`` when the worker's record does not fit in a TXT record.
        """
        metadata = event.metadata
        async with self._lock:
            if event.type == "worker-dropped":
                await self._unregister(zeroconf, metadata.uid)
                return
            info = self._info(metadata)
            self._cancel(info.key)
            if metadata.uid in self._infos:
                announcing = await zeroconf.async_update_service(info)
            else:
                announcing = await zeroconf.async_register_service(
                    info, cooperating_responders=True
                )
            self._infos[metadata.uid] = info
            self._broadcasts[info.key] = self._watch(info.key, announcing)
            if self._exits is not None:
                self._exits.watch(metadata.uid, metadata.pid)

    async def _unregister(self, zeroconf: AsyncZeroconf, uid: str) -> None:
        info = self._infos.pop(uid, None)
        if self._exits is not None:
            self._exits.forget(uid)
        if info is not None:
            self._cancel(info.key)
            self._goodbye(info.key, await zeroconf.async_unregister_service(info))

    def _exited(self, uid: str, pid: int) -> None:
        """The process of a published worker exited: withdraw the worker."""
        log.warning("worker %s (pid %d) exited; withdrawing it", uid, pid)
        task = asyncio.get_running_loop().create_task(self._withdraw(uid))
        self._withdrawing.add(task)
        task.add_done_callback(self._withdrawing.discard)

    async def _withdraw(self, uid: str) -> None:
        zeroconf, lock = self._opened, self._lock
        if zeroconf is None:
            return
        async with lock:
            if self._opened is zeroconf:
                await self._unregister(zeroconf, uid)

    def _info(self, metadata: WorkerMetadata) -> AsyncServiceInfo:
        # microseconds since the epoch, strictly increasing: later publications of a uid
        # (by this or a later publisher) carry a larger seq
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        properties = encode_txt(metadata, self._seq)  # ValueError when oversized, before I/O
        literal = address_literal(metadata)
        return AsyncServiceInfo(
            self.service_type,
            service_name(metadata.uid, self.service_type),
            port=metadata.port,
            properties=properties,
            server=server_name(metadata.uid),
            parsed_addresses=[literal] if literal else None,
            host_ttl=self.ttl,
            other_ttl=self.ttl,
        )

    def _goodbye(self, key: str, goodbye: Awaitable[object]) -> None:
        future = self._watch(key, goodbye)
        self._broadcasts[key] = future
        self._goodbyes.add(future)

    def _watch(self, key: str, broadcast: Awaitable[object]) -> asyncio.Future[object]:
        future = asyncio.ensure_future(broadcast)
        future.add_done_callback(lambda f: self._done(key, f))
        return future

    def _done(self, key: str, future: asyncio.Future[object]) -> None:
        if self._broadcasts.get(key) is future:
            del self._broadcasts[key]
        self._goodbyes.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("zeroconf broadcast for %s failed: %s", key, future.exception())

    def _cancel(self, key: str) -> None:
        """Stop what is still being broadcast for ``key``: a late announcement or goodbye
        would contradict what comes next."""
        future = self._broadcasts.pop(key, None)
        if future is not None:
            self._goodbyes.discard(future)
            future.cancel()

    def __repr__(self) -> str:
        state = "entered" if self.entered else "idle"
        return f"LanPublisher({self.service_type!r}, {state}, {len(self._infos)} workers)"
