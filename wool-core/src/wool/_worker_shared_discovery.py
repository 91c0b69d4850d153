"""One discovery subscription per distinct subscriber, shared by a worker's proxies.

Every caller pool that makes nested calls sends its own proxy to the worker, and each
proxy follows discovery; without sharing, a long-lived worker would hold one
subscription (threads, descriptors) per caller pool it ever served. Here the proxies of
a worker whose subscribers pickle to the same bytes (the same namespace, say) listen to
one subscription, which ends when its last listener leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from wool import _serialization
from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._protocols import DiscoverySubscriberLike

log = logging.getLogger("wool.worker")

_Item = DiscoveryEvent | BaseException


class SharedSubscriptions:
    """The shared subscriptions of one worker, keyed by the pickled subscriber."""

    def __init__(self) -> None:
        self._feeds: dict[bytes, _Feed] = {}

    def share(self, subscriber: DiscoverySubscriberLike) -> DiscoverySubscriberLike:
        """A subscriber that listens to the one subscription of ``subscriber``'s kind.

        A subscriber that cannot be pickled (so has no key to share by) is returned as is.
        """
        if isinstance(subscriber, SharedSubscriber):
            return subscriber
        try:
            key = _serialization.dumps(subscriber)
        except Exception:
            return subscriber
        return SharedSubscriber(self, key, subscriber)

    @property
    def active(self) -> int:
        """How many subscriptions are running."""
        return len(self._feeds)

    def feed(self, key: bytes, subscriber: DiscoverySubscriberLike) -> _Feed:
        """The running feed for ``key``, started from ``subscriber`` if there is none."""
        feed = self._feeds.get(key)
        if feed is None or feed.ended:
            feed = self._feeds[key] = _Feed(subscriber, lambda: self._feeds.pop(key, None))
        return feed

    async def close(self) -> None:
        """End every subscription."""
        feeds, self._feeds = list(self._feeds.values()), {}
        await asyncio.gather(*(feed.stop() for feed in feeds), return_exceptions=True)


class SharedSubscriber:
    """Iterates the shared subscription; pickles to the subscriber it stands for."""

    def __init__(
        self, owner: SharedSubscriptions, key: bytes, subscriber: DiscoverySubscriberLike
    ) -> None:
        self._owner = owner
        self._key = key
        self.subscriber = subscriber

    def __reduce__(self) -> tuple[Any, ...]:
        return (_identity, (self.subscriber,))

    def __repr__(self) -> str:
        return f"<shared {self.subscriber!r}>"

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[DiscoveryEvent]:
        feed = self._owner.feed(self._key, self.subscriber)
        inbox = feed.join()
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            feed.leave(inbox)


def _identity(subscriber: DiscoverySubscriberLike) -> DiscoverySubscriberLike:
    return subscriber


class _Feed:
    """One subscription fanned out to listeners; each joins with the workers known so far."""

    def __init__(self, subscriber: DiscoverySubscriberLike, forget: Any) -> None:
        self._subscriber = subscriber
        self._forget = forget
        self._known: dict[str, WorkerMetadata] = {}
        self._listeners: set[asyncio.Queue[_Item]] = set()
        self._task: asyncio.Task[None] | None = None
        self.ended = False

    def join(self) -> asyncio.Queue[_Item]:
        inbox: asyncio.Queue[_Item] = asyncio.Queue()
        for metadata in self._known.values():
            inbox.put_nowait(DiscoveryEvent("worker-added", metadata))
        self._listeners.add(inbox)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())
        return inbox

    def leave(self, inbox: asyncio.Queue[_Item]) -> None:
        self._listeners.discard(inbox)
        if not self._listeners and not self.ended:
            self._end()
            task = self._task
            if task is not None:
                task.cancel()

    async def stop(self) -> None:
        self._end()
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._forget()

    async def _follow(self) -> None:
        iterator = aiter(self._subscriber)
        try:
            async for event in iterator:
                if event.type == "worker-dropped":
                    self._known.pop(event.metadata.uid, None)
                else:
                    self._known[event.metadata.uid] = event.metadata
                for inbox in self._listeners:
                    inbox.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._end()  # the next proxy to listen starts a new subscription
            for inbox in self._listeners:
                inbox.put_nowait(exc)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(close())
