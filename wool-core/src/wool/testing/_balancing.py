"""What a dispatch test needs around the balancer: a fixed subscriber, and refusals."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Generator, Iterable

import attrs

from wool._events import TaskEvent
from wool._hooks import hookimpl, register, unregister
from wool._metadata import DiscoveryEvent, WorkerMetadata


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
def refusing(
    *uids: str, reason: str = "refused by wool.testing"
) -> Generator[AdmissionRefuser, None, None]:
    """Within the block, workers of this process with these uids refuse every task.

    This is the admission hook path a real plugin takes (``wool_admit_task``), so a
    caller sees the refusal as a ``TransientDispatchError``.
    """
    refuser = AdmissionRefuser(uids, reason)
    register(refuser)
    try:
        yield refuser
    finally:
        unregister(refuser)
