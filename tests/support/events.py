"""Following a discovery subscriber in a test: its events queue up, taken with bounded
waits; and the three kinds of event for a worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wool import DiscoveryEvent, DiscoverySubscriberLike, WorkerMetadata

EVENT_TIMEOUT = 10.0


def added(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-added", worker)


def updated(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-updated", worker)


def dropped(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-dropped", worker)


class Events:
    """A subscriber iterated in a background task; its events queue up for the test."""

    def __init__(self, subscriber: DiscoverySubscriberLike) -> None:
        self.iterator = aiter(subscriber)
        self.queue: asyncio.Queue[DiscoveryEvent] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for event in self.iterator:
            self.queue.put_nowait(event)

    async def next(self, timeout: float = EVENT_TIMEOUT) -> DiscoveryEvent:  # noqa: ASYNC109 (the failure says no event came)
        """The next event; fails after ``timeout`` seconds."""
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait(
            {getter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task.done():
            self.task.result()  # raises what ended the iteration
            raise AssertionError("the subscriber's iteration ended")
        raise AssertionError(f"no discovery event within {timeout} s")

    async def take(self, count: int, timeout: float = EVENT_TIMEOUT) -> list[DiscoveryEvent]:  # noqa: ASYNC109 (passed on to next())
        return [await self.next(timeout) for _ in range(count)]

    def pending(self) -> list[DiscoveryEvent]:
        """The events received and not yet taken (without waiting)."""
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.iterator.aclose()  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def following(subscriber: DiscoverySubscriberLike) -> AsyncIterator[Events]:
    events = Events(subscriber)
    try:
        yield events
    finally:
        await events.close()
