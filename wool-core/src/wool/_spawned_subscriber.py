"""A pool's view of its own spawned workers, whatever its discovery carries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._protocols import DiscoverySubscriberLike


class SpawnedFirst:
    """A picklable subscriber: ``worker-added`` for each of ``spawned``, then every event of
    ``subscriber``, whose other attributes it shows as its own (``namespace``, ...).

    A pool's workers listen on unix sockets by default, whose ``unix:`` addresses a
    discovery meant for other hosts (LAN) does not carry back: the pool, and the copies
    of its proxy that its workers use for nested calls, know them from here instead.
    """

    def __init__(
        self, subscriber: DiscoverySubscriberLike, spawned: Iterable[WorkerMetadata]
    ) -> None:
        self.subscriber = subscriber
        self.spawned = tuple(spawned)

    def __getattr__(self, name: str) -> Any:
        if name in ("subscriber", "spawned"):  # not set yet: never look inside
            raise AttributeError(name)
        return getattr(self.subscriber, name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpawnedFirst, (self.subscriber, self.spawned))

    def __repr__(self) -> str:
        return f"SpawnedFirst({self.subscriber!r}, {len(self.spawned)} spawned)"

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
