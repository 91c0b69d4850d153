"""The publisher: writes worker records into a namespace's table."""

from __future__ import annotations

import logging
from types import TracebackType

from wool import DiscoveryEvent
from wool_discovery_local._liveness import start_time
from wool_discovery_local._lock import DEFAULT_TIMEOUT
from wool_discovery_local._names import Paths, validate_namespace
from wool_discovery_local._segment import Attachment
from wool_discovery_local._table import encode

log = logging.getLogger(__name__)


class LocalPublisher:
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
        self._attachment: Attachment | None = None
        self._published: set[str] = set()

    async def __aenter__(self) -> LocalPublisher:
        if self._attachment is not None:
            raise RuntimeError(f"the publisher of {self.namespace!r} is already entered")
        self._attachment = await Attachment.attach(
            Paths.of(self.namespace), lock_timeout=self.lock_timeout
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        attachment, self._attachment = self._attachment, None
        published, self._published = self._published, set()
        if attachment is None:
            return
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

    async def publish(self, event: DiscoveryEvent) -> None:
        """Apply ``event`` to the namespace and notify its subscribers."""
        if not isinstance(event, DiscoveryEvent):
            raise TypeError(f"expected a wool.DiscoveryEvent, got {type(event).__name__}")
        attachment = self._attachment
        if attachment is None:
            raise RuntimeError(
                f"the publisher of {self.namespace!r} is not entered; use 'async with'"
            )
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
        state = "entered" if self._attachment is not None else "idle"
        return f"LocalPublisher({self.namespace!r}, {state})"
