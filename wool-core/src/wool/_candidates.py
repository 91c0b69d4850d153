"""The workers a proxy may route to, and the per-worker record a load balancer ranks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import attrs

from wool._backoff import Pauses, PausingConnection
from wool._connection import WorkerConnection
from wool._credentials import WorkerCredentials
from wool._metadata import WorkerMetadata

log = logging.getLogger("wool.proxy")


@attrs.frozen
class Candidate:
    """A worker a task may go to, with what is known of its load, as a balancer sees it.

    ``metadata`` is the worker's discovery record. ``in_flight`` counts the calls this
    proxy has sent to the worker that have not ended, those still being dispatched
    included (so a burst of concurrent dispatches sees its own earlier members).
    ``reported_running`` and ``loop_lag`` (seconds) are the load the worker reports of
    itself, ``None`` while it reports nothing (no worker reports them yet; a load-aware
    balancer should treat ``None`` as unknown).
    """

    metadata: WorkerMetadata
    in_flight: int = 0
    reported_running: int | None = None
    loop_lag: float | None = None

    @property
    def uid(self) -> str:
        """The worker's uid."""
        return self.metadata.uid


class WorkerSet:
    """The routable workers in discovery order, minus evicted ones and those paused after
    a failed connection (wool._backoff), with their load."""

    def __init__(self) -> None:
        self._known: dict[str, WorkerConnection] = {}
        self._evicted: set[str] = set()
        self._in_flight: dict[str, int] = {}
        self._pauses = Pauses(self._touch)
        self._view: dict[WorkerMetadata, WorkerConnection] | None = None
        self._all: dict[WorkerMetadata, WorkerConnection] | None = None  # paused ones too
        self._any_proven = False
        self._changed = asyncio.Condition()

    @property
    def workers(self) -> Mapping[WorkerMetadata, WorkerConnection]:
        """The routable workers and their connections, in discovery order (the paused
        ones too when every worker is paused: trying them beats having none)."""
        if self._view is None:
            live = {c.metadata: c for uid, c in self._known.items() if uid not in self._evicted}
            ready = {m: c for m, c in live.items() if not self._pauses.paused(m.address)}
            self._view = ready or live
            self._all = live
        return self._view

    def candidates(self) -> list[Candidate]:
        """One record per routable worker, in discovery order."""
        in_flight = self._in_flight
        return [Candidate(m, in_flight.get(m.uid, 0)) for m in self.workers]

    def connection(self, uid: str) -> WorkerConnection | None:
        """The connection of a routable worker, if it still is one."""
        connection = self._known.get(uid)
        if connection is None or uid in self._evicted:
            return None
        if isinstance(connection, PausingConnection) and self._view is not self._all:
            if self._pauses.hold(connection, self._proven()):
                return None  # paused since the balancer saw it, or a suspect
        return connection

    def _proven(self) -> bool:
        """Whether some routable worker ever took a call (so suspects can wait)."""
        if not self._any_proven:
            self._any_proven = any(
                isinstance(c, PausingConnection) and c.connected_once
                for uid, c in self._known.items()
                if uid not in self._evicted
            )
        return self._any_proven

    def started(self, uid: str) -> Callable[[], None]:
        """Count a call now running on ``uid``; call the returned function when it ends."""
        self._in_flight[uid] = self._in_flight.get(uid, 0) + 1
        finished = False

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            left = self._in_flight.get(uid, 0) - 1
            if left > 0:
                self._in_flight[uid] = left
            else:
                self._in_flight.pop(uid, None)

        return finish

    def in_flight(self, uid: str) -> int:
        """The calls running on ``uid`` through this proxy."""
        return self._in_flight.get(uid, 0)

    def evict(self, worker: WorkerMetadata) -> None:
        """Stop routing to ``worker`` until discovery announces it again."""
        if worker.uid in self._known and worker.uid not in self._evicted:
            log.warning("evicting worker %s at %s", worker.uid, worker.address)
            self._evicted.add(worker.uid)
            self._view = None

    def upsert(
        self, metadata: WorkerMetadata, credentials: WorkerCredentials | None
    ) -> WorkerConnection | None:
        """Add or update a worker; returns a replaced connection to close, if any."""
        old = self._known.get(metadata.uid)
        stale = None
        if old is not None and old.metadata.address == metadata.address:
            old.metadata = metadata
        else:
            stale = old
            self._known[metadata.uid] = PausingConnection(metadata, credentials, self._pauses)
        self._evicted.discard(metadata.uid)
        self._touch()
        return stale

    def remove(self, uid: str) -> WorkerConnection | None:
        """Forget a worker; returns its connection to close, if it was known."""
        connection = self._known.pop(uid, None)
        self._evicted.discard(uid)
        self._any_proven = False
        if connection is not None:
            self._touch()
        return connection

    def clear(self) -> list[WorkerConnection]:
        """Forget every worker; returns their connections to close."""
        connections = list(self._known.values())
        self._known.clear()
        self._evicted.clear()
        self._any_proven = False
        self._pauses.close()
        self._touch()
        return connections

    def _touch(self) -> None:
        self._view = None
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checking whenever the set changes."""
        async with self._changed:
            await self._changed.wait_for(predicate)
