"""What a load-balancer test needs around the balancer: a context, a subscriber, refusals."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping

import attrs

from wool._connection import WorkerConnection
from wool._events import TaskEvent
from wool._hooks import hookimpl, plugin_manager
from wool._metadata import DiscoveryEvent, WorkerMetadata


class RecordingContext:
    """A ``wool.LoadBalancerContextLike`` over fixed workers that records evictions.

    ``workers`` holds a real ``WorkerConnection`` per worker, in the given order, minus
    the evicted and removed ones, like a pool's context. Use it as
    ``async with RecordingContext(workers) as context:`` to close the connections after.
    """

    def __init__(self, workers: Iterable[WorkerMetadata]) -> None:
        self._connections = {m: WorkerConnection(m) for m in workers}
        self._retired: list[WorkerConnection] = []
        self.evicted: list[WorkerMetadata] = []
        """Every ``evict()`` call's argument, in order."""

    @property
    def workers(self) -> Mapping[WorkerMetadata, WorkerConnection]:
        """The workers a balancer may use now."""
        evicted = {m.uid for m in self.evicted}
        return {m: c for m, c in self._connections.items() if m.uid not in evicted}

    def evict(self, worker: WorkerMetadata) -> None:
        """Record the eviction; the worker leaves ``workers``."""
        self.evicted.append(worker)

    def remove(self, worker: WorkerMetadata) -> None:
        """Forget ``worker``, as when discovery drops it."""
        connection = self._connections.pop(worker, None)
        if connection is not None:
            self._retired.append(connection)

    async def aclose(self) -> None:
        """Close every connection this context opened."""
        connections = [*self._connections.values(), *self._retired]
        self._connections.clear()
        self._retired.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    async def __aenter__(self) -> RecordingContext:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@attrs.frozen
class StaticSubscriber:
    """A picklable ``wool.DiscoverySubscriberLike`` announcing fixed workers, then idling."""

    workers: tuple[WorkerMetadata, ...] = attrs.field(converter=tuple)

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[DiscoveryEvent]:
        for metadata in self.workers:
            yield DiscoveryEvent("worker-added", metadata)
        await asyncio.Event().wait()


class AdmissionRefuser:
    """A ``wool_admit_task`` plugin refusing every task on the workers whose uids it holds.

    ``refusals`` counts the refused tasks per worker uid. It is asked before other plugins.
    """

    def __init__(self, uids: Iterable[str], reason: str = "refused by wool.testing") -> None:
        self.uids = set(uids)
        self.reason = reason
        self.refusals: collections.Counter[str] = collections.Counter()

    @hookimpl(tryfirst=True)
    def wool_admit_task(self, event: TaskEvent, worker: WorkerMetadata) -> str | None:
        """Refuse the task on the workers of ``uids``; abstain elsewhere."""
        if worker.uid in self.uids:
            self.refusals[worker.uid] += 1
            return f"{self.reason} ({event.routine}() on {worker.uid})"
        return None


@contextlib.contextmanager
def refusing(*uids: str, reason: str = "refused by wool.testing") -> Iterator[AdmissionRefuser]:
    """Within the block, workers of this process with these uids refuse every task.

    This is the admission hook path a real plugin takes (``wool_admit_task``), so a
    caller sees the refusal as a ``TransientDispatchError``.
    """
    refuser = AdmissionRefuser(uids, reason)
    manager = plugin_manager()
    manager.register(refuser)
    try:
        yield refuser
    finally:
        manager.unregister(refuser)
