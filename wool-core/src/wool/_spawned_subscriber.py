"""A pool's view of its own spawned workers, whatever its discovery carries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs

from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._protocols import DiscoverySubscriberLike


@attrs.frozen
class SpawnedFirst:
    """A picklable subscriber: ``worker-added`` for each of ``spawned``, then every event of
    ``subscriber``.

    A pool's workers listen on unix sockets by default, whose ``unix:`` addresses a
    discovery meant for other hosts (LAN) does not carry back: the pool, and the copies
    of its proxy that its workers use for nested calls, know them from here instead.
    """

    subscriber: DiscoverySubscriberLike
    spawned: tuple[WorkerMetadata, ...] = attrs.field(converter=tuple)

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[DiscoveryEvent]:
        for metadata in self.spawned:
            yield DiscoveryEvent("worker-added", metadata)
        iterator = aiter(self.subscriber)
        try:
            async for event in iterator:
                yield event
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
