"""The subscriber: follows a namespace's table and turns its changes into events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator

import attrs

from wool import DiscoveryEvent
from wool_discovery_local._liveness import ExitWatch, is_alive
from wool_discovery_local._lock import DEFAULT_TIMEOUT
from wool_discovery_local._names import Paths, validate_namespace
from wool_discovery_local._notify import Watch
from wool_discovery_local._segment import Attachment
from wool_discovery_local._table import Record

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 1.0


@attrs.frozen
class LocalSubscriber:
    """Delivers the worker events of a namespace; picklable, and iterable in any process
    of the host.

    Each ``aiter()`` attaches to the namespace on its first step, yields ``worker-added``
    for every live worker already published, then follows changes until closed with
    ``aclose()``, which releases everything the iteration holds (observer thread, pidfds,
    the attachment itself; the last attachment removes the namespace's files).

    Changes are noticed through the notify folder, through a pidfd per worker process
    (where the OS has them), and through a rescan every ``poll_interval`` seconds in case
    both miss something. Workers whose process is gone are dropped, for every subscriber.
    """

    namespace: str = attrs.field(validator=lambda _, __, value: validate_namespace(value))
    poll_interval: float = attrs.field(
        default=DEFAULT_POLL_INTERVAL, validator=attrs.validators.gt(0)
    )
    lock_timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=attrs.validators.gt(0))

    def __aiter__(self) -> AsyncGenerator[DiscoveryEvent, None]:
        return _follow(self)


async def _follow(subscriber: LocalSubscriber) -> AsyncGenerator[DiscoveryEvent, None]:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    attachment = await Attachment.attach(
        Paths.of(subscriber.namespace), lock_timeout=subscriber.lock_timeout
    )
    watch: Watch | None = None
    exits = ExitWatch(loop, wake.set)
    try:
        watch = Watch(attachment.paths.notify, loop, wake.set)
        known: dict[str, Record] = {}
        generation = -1
        while True:
            wake.clear()
            if generation != attachment.generation() or not _all_alive(known):
                seen = attachment.generation()
                try:
                    current = {r.metadata.uid: r for r in await attachment.live_records()}
                except TimeoutError as exc:
                    log.warning("%s; retrying in %g s", exc, subscriber.poll_interval)
                else:
                    generation = seen
                    for event in _diff(known, current):
                        yield event
                    known = current
                    exits.watch(r.metadata.pid for r in known.values())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(subscriber.poll_interval):
                    await wake.wait()
    finally:
        exits.close()
        if watch is not None:
            watch.close()
        await attachment.detach()


def _all_alive(records: dict[str, Record]) -> bool:
    return all(is_alive(r.metadata.pid, r.started) for r in records.values())


def _diff(before: dict[str, Record], after: dict[str, Record]) -> Iterator[DiscoveryEvent]:
    """The events that turn ``before`` into ``after``: drops first, then in ``after``'s order."""
    for uid, record in before.items():
        if uid not in after:
            yield DiscoveryEvent("worker-dropped", record.metadata)
    for uid, record in after.items():
        if uid not in before:
            yield DiscoveryEvent("worker-added", record.metadata)
        elif before[uid].metadata != record.metadata:
            yield DiscoveryEvent("worker-updated", record.metadata)
