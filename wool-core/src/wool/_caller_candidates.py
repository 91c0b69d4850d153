"""The workers a proxy may route to, and the per-worker record a load balancer ranks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import attrs

from wool._caller_backoff import Pauses, PausingConnection
from wool._caller_capacity import CapacityQueue
from wool._caller_connection import CallerConnection
from wool._credentials import WorkerCredentials
from wool._metadata import WorkerMetadata

log = logging.getLogger("wool.proxy")


@attrs.frozen
class Candidate:
    """A worker a task may go to, with what is known of its load, as a balancer sees it.

    ``metadata`` is the worker's discovery record. ``in_flight`` counts the calls this
    proxy has sent to the worker that have not ended, those still being dispatched
    included (so a burst of concurrent dispatches sees its own earlier members).
    ``reported_running`` and ``loop_lag`` (seconds) are the load the worker last reported
    of itself (every caller's calls running there, and its event loop's lag), ``None``
    until it reported (a load-aware balancer should treat ``None`` as unknown).
    ``unreported`` counts this proxy's calls sent since that report (not in it yet), so
    ``reported_running + unreported`` is the worker's load as best known here.
    ``concurrency`` is the worker's reported limit of calls at once (``None``: unlimited
    or unknown).
    """

    metadata: WorkerMetadata
    in_flight: int = 0
    reported_running: int | None = None
    loop_lag: float | None = None
    unreported: int = 0
    concurrency: int | None = None

    @property
    def uid(self) -> str:
        """The worker's uid."""
        return self.metadata.uid


class CandidateSet:
    """The routable workers in discovery order, minus evicted ones and those paused after
    a failed connection (wool._caller_backoff), with their load."""

    def __init__(self, *, standby: bool = False, socket_sessions: bool = True) -> None:
        self.standby = standby
        """Whether full workers may be sent standby calls (see :meth:`standby_wanted`)."""
        self.socket_sessions = socket_sessions
        """Whether sessions go on a local worker's session socket (else on gRPC)."""
        self._known: dict[str, CallerConnection] = {}
        self._evicted: set[str] = set()
        self._in_flight: dict[str, int] = {}
        self._standby: dict[str, int] = {}
        """This proxy's calls each full worker holds, not started yet (a standby each)."""
        self._no_standby: set[str] = set()
        """Workers that did not start a standby of ours (another caller's held their
        place, or their call kept the loop busy): none is sent there until one of our
        calls there ends or the worker reports room."""
        self._pauses = Pauses(self._touch)
        self._view: dict[WorkerMetadata, CallerConnection] | None = None
        self._all: dict[WorkerMetadata, CallerConnection] | None = None  # paused ones too
        self._any_proven = False
        self._records: dict[str, Candidate] = {}  # the latest record of each worker
        self._changed = asyncio.Condition()
        self.capacity = CapacityQueue(self._may_have_capacity)
        """Tasks waiting because every worker was full."""

    @property
    def workers(self) -> Mapping[WorkerMetadata, CallerConnection]:
        """The routable workers and their connections, in discovery order (the paused
        ones too when every worker is paused: trying them beats having none)."""
        if self._view is None:
            live = {c.metadata: c for uid, c in self._known.items() if uid not in self._evicted}
            ready = {m: c for m, c in live.items() if not self._pauses.paused(m.address)}
            self._view = ready or live
            self._all = live
        return self._view

    def candidates(self) -> list[Candidate]:
        """One record per routable worker, in discovery order.

        A worker's record is made again only when its load changed since the last call
        (the hot path of dispatch: a record costs more than the comparisons).
        """
        in_flight, records = self._in_flight, self._records
        candidates: list[Candidate] = []
        for metadata, connection in self.workers.items():
            report = connection.report
            uid = metadata.uid
            count = in_flight.get(uid, 0)
            record = records.get(uid)
            if report is None:
                if (
                    record is None
                    or record.metadata is not metadata
                    or record.in_flight != count
                    or record.reported_running is not None
                ):
                    record = records[uid] = Candidate(metadata, count)
            else:
                unreported = connection.unreported
                limit = report.limit or None
                if (
                    record is None
                    or record.metadata is not metadata
                    or record.in_flight != count
                    or record.reported_running != report.running
                    or record.loop_lag != report.lag
                    or record.unreported != unreported
                    or record.concurrency != limit
                ):
                    record = records[uid] = Candidate(
                        metadata, count, report.running, report.lag, unreported, limit
                    )
            candidates.append(record)
        return candidates

    def known_full(self, connection: CallerConnection) -> bool:
        """Whether the worker's latest report, and the calls sent since, say it is full."""
        report = connection.report
        return (
            report is not None
            and report.limit > 0
            and report.running + connection.unreported >= report.limit
        )

    def may_stand_by(self, connection: CallerConnection) -> bool:
        """Whether a task may go to this full worker as a standby, which it starts once
        a slot frees: the worker has a concurrency limit and holds none of ours yet."""
        report = connection.report
        uid = connection.metadata.uid
        return (
            report is not None
            and report.limit > 0
            and not self._standby.get(uid)
            and uid not in self._no_standby
        )

    def standby_failed(self, uid: str) -> None:
        """A standby sent to ``uid`` was not started there (see :meth:`may_stand_by`)."""
        self._no_standby.add(uid)

    def standby_wanted(self) -> bool:
        """Whether enough tasks wait for a worker to hold one as a standby: at least one
        more than the workers, so that a task held by a worker whose call runs long never
        leaves another worker without work meanwhile (the others have the rest); never
        unless this proxy was made with ``standby``."""
        if not self.standby:
            return False
        workers = self.workers
        return self.capacity.waiting >= len(workers) and any(
            self.may_stand_by(c) for c in workers.values()
        )

    def standing_by(self, uid: str) -> Callable[[], None]:
        """Count a standby sent to ``uid``; call the returned function once it started or failed."""
        self._standby[uid] = self._standby.get(uid, 0) + 1
        return _CountEnd(self, self._standby, uid)

    def _may_have_capacity(self) -> bool:
        workers = self.workers.values()
        return not all(self.known_full(c) for c in workers) or self.standby_wanted()

    def _reported(self, connection: CallerConnection) -> None:
        if not self.known_full(connection):
            self._no_standby.discard(connection.metadata.uid)
            self.capacity.wake()

    def unresponsive(self, uid: str) -> bool:
        """Whether ``uid`` left a call unaccepted while silent (dispatch tries it last)."""
        connection = self._known.get(uid)
        return connection is not None and connection.unresponsive

    def connection(self, uid: str) -> CallerConnection | None:
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
        return _CountEnd(self, self._in_flight, uid)

    def _count_ended(self, counts: dict[str, int], uid: str) -> None:
        """One call counted in ``counts`` (in flight, or standing by) on ``uid`` ended."""
        left = counts.get(uid, 0) - 1
        if left > 0:
            counts[uid] = left
        else:
            counts.pop(uid, None)
        if counts is self._in_flight:
            self._no_standby.discard(uid)
        self.capacity.wake()  # a slot, or a standby place, may be free

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
    ) -> CallerConnection | None:
        """Add or update a worker; returns a replaced connection to close, if any."""
        old = self._known.get(metadata.uid)
        stale = None
        if old is not None and old.metadata.address == metadata.address:
            old.metadata = metadata
        else:
            stale = old
            connection = self._known[metadata.uid] = PausingConnection(
                metadata, credentials, self._pauses, socket_sessions=self.socket_sessions
            )
            connection.on_report = self._reported
        self._evicted.discard(metadata.uid)
        self._touch()
        return stale

    def remove(self, uid: str) -> CallerConnection | None:
        """Forget a worker; returns its connection to close, if it was known."""
        connection = self._known.pop(uid, None)
        self._records.pop(uid, None)
        self._evicted.discard(uid)
        self._any_proven = False
        if connection is not None:
            self._touch()
        return connection

    def clear(self) -> list[CallerConnection]:
        """Forget every worker; returns their connections to close."""
        connections = list(self._known.values())
        self._known.clear()
        self._records.clear()
        self._evicted.clear()
        self._any_proven = False
        self._pauses.close()
        self._touch()
        return connections

    def _touch(self) -> None:
        self._view = None
        self.capacity.wake()
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checking whenever the set changes."""
        async with self._changed:
            await self._changed.wait_for(predicate)


class _CountEnd:
    """Ends one call's place in one of a candidate set's counts, once, when called (an
    object rather than a closure: one lives with each pending call, and the cycle
    collector traverses every object that does)."""

    __slots__ = ("_counts", "_set", "_uid")

    def __init__(self, candidates: CandidateSet, counts: dict[str, int], uid: str) -> None:
        self._set: CandidateSet | None = candidates
        self._counts = counts
        self._uid = uid

    def __call__(self) -> None:
        candidates, self._set = self._set, None
        if candidates is not None:
            candidates._count_ended(self._counts, self._uid)  # pyright: ignore[reportPrivateUsage]
