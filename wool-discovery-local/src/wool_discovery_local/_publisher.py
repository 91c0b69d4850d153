"""The publisher: writes worker records into a namespace's table."""

from __future__ import annotations

import logging

from wool import DiscoveryEvent
from wool.plugins import DiscoveryPublisher
from wool_discovery_local._liveness import start_time
from wool_discovery_local._lock import DEFAULT_TIMEOUT
from wool_discovery_local._names import Paths, validate_namespace
from wool_discovery_local._segment import Attachment
from wool_discovery_local._table import encode

log = logging.getLogger(__name__)


class LocalPublisher(DiscoveryPublisher[Attachment]):
    """Publishes worker events into a namespace; use as ``async with publisher as p``.

    ``worker-added`` inserts a worker (replacing any with the same uid),
    ``worker-updated`` replaces it (inserting it if absent), ``worker-dropped`` removes it.
    Leaving the context withdraws every worker this publisher published that is still
    there, then detaches (the last attachment of the namespace removes its files). A
    publisher can be entered again after it is left, but not twice at once.
    """

    def __init__(self, namespace: str, *, lock_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.namespace = validate_namespace(namespace)
        self.lock_timeout = lock_timeout
        self._published: set[str] = set()

    def _describe(self, article: str) -> str:
        return f"the publisher of {self.namespace!r}"

    async def _open(self) -> Attachment:
        return await Attachment.attach(Paths.of(self.namespace), lock_timeout=self.lock_timeout)

    async def _close(self, attachment: Attachment) -> None:
        published, self._published = self._published, set()
        try:
            if published:
                async with attachment.locked() as table:
                    changed = [uid for uid in published if table.remove(uid)]
                if changed:
                    attachment.notify()
        except (OSError, TimeoutError) as exc:
            log.warning("could not withdraw workers from %r: %s", self.namespace, exc)
        finally:
            await attachment.detach()

    async def _apply(self, attachment: Attachment, event: DiscoveryEvent) -> None:
        """Apply ``event`` to the namespace and notify its subscribers."""
        metadata = event.metadata
        if event.type == "worker-dropped":
            async with attachment.locked() as table:
                changed = table.remove(metadata.uid)
            self._published.discard(metadata.uid)
        else:
            if metadata.pid <= 0:
                raise ValueError(f"worker {metadata.uid!r} has no process id ({metadata.pid})")
            encode(metadata)  # fail on an oversized record before taking the lock
            started = start_time(metadata.pid)
            async with attachment.locked() as table:
                changed = table.put(metadata, started)
            self._published.add(metadata.uid)
        if changed:
            attachment.notify()

    def __repr__(self) -> str:
        state = "entered" if self.entered else "idle"
        return f"LocalPublisher({self.namespace!r}, {state})"
