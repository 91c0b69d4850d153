"""The subscriber: browses DNS-SD services and turns them into worker events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable

import attrs
from zeroconf import (
    DNSOutgoing,  # pyright: ignore[reportPrivateImportUsage] - a documented re-export
    DNSQuestion,  # pyright: ignore[reportPrivateImportUsage]
    DNSQuestionType,
    DNSService,  # pyright: ignore[reportPrivateImportUsage]
    DNSText,  # pyright: ignore[reportPrivateImportUsage]
    IPVersion,
    RecordUpdate,
    RecordUpdateListener,
    ServiceStateChange,
    Zeroconf,
    current_time_millis,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_lan import _interfaces
from wool_discovery_lan._records import decode_txt, txt_seq, validate_service_type

log = logging.getLogger(__name__)

DEFAULT_SERVICE_TYPE = "_wool._tcp.local."

# DNS constants (RFC 1035, RFC 2782)
_FLAGS_QUERY = 0x0000
_CLASS_IN = 1
_TYPE_TXT = 16
_TYPE_SRV = 33

REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
"""When a record's owner is asked again, as fractions of its TTL (RFC 6762 section 5.2)."""
WITHDRAWN_MEMORY = 1200.0
"""Seconds a goodbye is remembered: older answers for the withdrawn record that arrive
meanwhile are ignored (zeroconf keeps a PTR record at least 1125 s)."""
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
"""Seconds between the queries for a service whose records are missing: doubling from
RETRY_FIRST up to RETRY_MAX, until its PTR record goes away."""


def _service_type(_: object, __: object, value: str) -> None:
    validate_service_type(value)


def _interfaces_converter(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    return _interfaces.normalize(value)


@attrs.frozen
class LanSubscriber:
    """Delivers the workers published as DNS-SD services of ``service_type``; picklable.

    It holds configuration only. Each ``aiter()`` opens a zeroconf instance on its first
    step (on the interfaces resolved where it runs), browses the service type, and
    yields ``worker-added`` for every worker that answers, then ``worker-added``,
    ``worker-updated`` and ``worker-dropped`` as services appear, change and go away,
    until ``aclose()`` closes the browser and the zeroconf instance.

    A service goes away when its owner says goodbye, or when its SRV or TXT record
    expires: while a worker is known, its records are queried again at 80, 85, 90 and 95
    percent of their TTL, so a publisher that died, or whose host is cut off, stops
    answering and its workers are dropped when their TTL runs out. A dropped service is
    queried again now and then while its PTR record lasts, and comes back as
    ``worker-added`` if it answers.
    """

    service_type: str = attrs.field(default=DEFAULT_SERVICE_TYPE, validator=_service_type)
    interfaces: tuple[str, ...] | None = attrs.field(default=None, converter=_interfaces_converter)

    def __aiter__(self) -> AsyncGenerator[DiscoveryEvent, None]:
        return _follow(self)


async def _follow(subscriber: LanSubscriber) -> AsyncGenerator[DiscoveryEvent, None]:
    addresses = _interfaces.resolve(subscriber.interfaces)
    zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
    tracker = _Tracker(zeroconf.zeroconf, subscriber.service_type)
    browser: AsyncServiceBrowser | None = None
    try:
        zeroconf.zeroconf.async_add_listener(tracker, None)
        browser = AsyncServiceBrowser(
            zeroconf.zeroconf,
            subscriber.service_type,
            handlers=[tracker.changed],
            question_type=DNSQuestionType.QM,
        )
        while True:
            for event in tracker.poll():
                yield event
            await tracker.wait()
    finally:
        try:
            if browser is not None:
                await browser.async_cancel()
            zeroconf.zeroconf.async_remove_listener(tracker)
        finally:
            await zeroconf.async_close()


@attrs.frozen
class _Record:
    """What the subscriber keeps of the latest SRV or TXT record of a service."""

    data: object  # the TXT bytes, or (server, port) for an SRV record
    created: float  # ms, when it arrived
    ttl: float  # seconds
    seq: int = 0  # a TXT record's publication number

    def at(self, fraction: float) -> float:
        """The time (ms) at which ``fraction`` of the record's TTL has passed."""
        return self.created + self.ttl * 1000 * fraction

    def live(self, now: float) -> bool:
        return now < self.at(1.0)


@attrs.define
class _Service:
    """What the subscriber knows of one service instance."""

    name: str
    announced: WorkerMetadata | None = None
    refreshed_record: float = -1.0  # `created` of the record the refreshes are for
    refreshes: int = 0
    next_query: float = 0.0  # ms; for a service whose records are missing
    retry: float = RETRY_FIRST


class _Tracker(RecordUpdateListener):
    """Follows the SRV and TXT records of a service type and the browser's view of its
    instances; diffs them against what was announced, and schedules queries.

    The latest SRV and TXT record received for a name is the current one (records are
    published with the cache-flush bit, so a newer one replaces an older one); a goodbye
    for the current data removes it, and so does its TTL running out.
    """

    def __init__(self, zeroconf: Zeroconf, service_type: str) -> None:
        super().__init__()
        self.zeroconf = zeroconf
        self.suffix = "." + service_type.lower()
        self.services: dict[str, _Service] = {}
        self.removed: set[str] = set()
        self.records: dict[tuple[str, int], _Record] = {}
        self.withdrawn: dict[str, tuple[int, float]] = {}  # key -> (seq, when, ms)
        self.announced_uids: dict[str, str] = {}  # uid -> service key
        self.deadline: float | None = None
        self.woken = asyncio.Event()

    def async_update_records(self, zc: Zeroconf, now: float, records: list[RecordUpdate]) -> None:
        """zeroconf's callback for every record received (runs in the event loop)."""
        for update in records:
            record = update.new
            kind = record.type
            if kind not in (_TYPE_SRV, _TYPE_TXT):
                continue
            key = record.name.lower()
            if not key.endswith(self.suffix):
                continue
            if isinstance(record, DNSText):
                data: object = record.text
            elif isinstance(record, DNSService):
                data = (record.server_key, record.port)
            else:  # pragma: no cover - zeroconf parses these types into those classes
                continue
            if record.is_expired(now):  # a goodbye, or expired from the cache
                current = self.records.get((key, kind))
                if current is not None and current.data == data:
                    del self.records[(key, kind)]
                    if kind == _TYPE_TXT:
                        self.withdrawn[key] = (current.seq, now)
            elif kind == _TYPE_TXT:
                assert isinstance(data, bytes)
                seq = txt_seq(data)
                current = self.records.get((key, kind))
                if current is not None and current.live(now) and seq < current.seq:
                    continue  # an answer queued before the record changed
                withdrawn = self.withdrawn.get(key)
                if withdrawn is not None and seq <= withdrawn[0]:
                    continue  # an answer queued before the record was withdrawn
                self.records[(key, kind)] = _Record(data, record.created, record.ttl, seq)
            else:
                self.records[(key, kind)] = _Record(data, record.created, record.ttl)
            self.woken.set()

    def async_update_records_complete(self) -> None:
        """zeroconf's callback after a packet's records are cached."""

    def changed(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """The browser's callback (runs in the event loop)."""
        key = name.lower()
        if state_change is ServiceStateChange.Removed:
            self.removed.add(key)
        else:
            self.removed.discard(key)
            self.services.setdefault(key, _Service(name))
        self.woken.set()

    async def wait(self) -> None:
        """Until a change arrives or the next scheduled check is due."""
        timeout = None
        if self.deadline is not None:
            timeout = max(0.0, (self.deadline - current_time_millis()) / 1000)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.woken.wait()

    def poll(self) -> list[DiscoveryEvent]:
        """The events since the last poll; sends the queries that are due."""
        self.woken.clear()
        now = current_time_millis()
        events: list[DiscoveryEvent] = []
        for key in self.removed:
            service = self.services.pop(key, None)
            if service is not None and service.announced is not None:
                events.append(self._drop(key, service))
        self.removed.clear()
        for stale in [k for k, r in self.records.items() if not r.live(now)]:
            del self.records[stale]
        forget = now - WITHDRAWN_MEMORY * 1000
        for key in [k for k, (_, when) in self.withdrawn.items() if when < forget]:
            del self.withdrawn[key]
        questions: list[str] = []
        deadline: float | None = None
        for key, service in self.services.items():
            current, first = self._read(key, service.name)
            if service.announced is not None and current != service.announced:
                if current is None:
                    events.append(self._drop(key, service))
                else:
                    self.announced_uids.pop(service.announced.uid, None)
                    service.announced = current
                    self.announced_uids[current.uid] = key
                    events.append(DiscoveryEvent("worker-updated", current))
            elif service.announced is None and current is not None:
                service.announced = current
                self.announced_uids[current.uid] = key
                events.append(DiscoveryEvent("worker-added", current))
            due, ask = self._schedule(key, service, first, now)
            if ask:
                questions.append(service.name)
            deadline = due if deadline is None else min(deadline, due)
        self.deadline = deadline
        if questions:
            self._ask(questions)
        return events

    def _drop(self, key: str, service: _Service) -> DiscoveryEvent:
        assert service.announced is not None
        dropped, service.announced = service.announced, None
        if self.announced_uids.get(dropped.uid) == key:
            del self.announced_uids[dropped.uid]
        return DiscoveryEvent("worker-dropped", dropped)

    def _read(self, key: str, name: str) -> tuple[WorkerMetadata | None, _Record | None]:
        """The worker described under ``name`` (when its records are complete), and the one
        of its SRV and TXT records that expires first."""
        srv = self.records.get((key, _TYPE_SRV))
        txt = self.records.get((key, _TYPE_TXT))
        if srv is None or txt is None:
            return None, None
        first = min(srv, txt, key=lambda r: r.at(1.0))
        try:
            metadata = decode_txt(txt.data)  # type: ignore[arg-type]
        except ValueError as exc:
            log.debug("ignoring service %s: %s", name, exc)
            return None, None
        owner = self.announced_uids.get(metadata.uid)
        if owner is not None and owner != key:
            log.debug(
                "ignoring service %s: worker %s is announced by %s", name, metadata.uid, owner
            )
            return None, None
        return metadata, first

    def _schedule(
        self, key: str, service: _Service, record: _Record | None, now: float
    ) -> tuple[float, bool]:
        """When ``service`` needs looking at next, and whether to query it now.

        A known worker is queried at the refresh points of ``record`` (the first of its
        records to expire) and looked at again when that expires. A service with missing
        records is queried with a growing interval, unless its owner withdrew it (it
        announces a comeback itself).
        """
        if record is not None:
            service.retry = RETRY_FIRST
            if record.created != service.refreshed_record:
                service.refreshed_record, service.refreshes = record.created, 0
            ask = False
            while service.refreshes < len(REFRESH_POINTS) and now >= record.at(
                REFRESH_POINTS[service.refreshes]
            ):
                service.refreshes += 1
                ask = True
            if service.refreshes < len(REFRESH_POINTS):
                return record.at(REFRESH_POINTS[service.refreshes]), ask
            return record.at(1.0), ask
        if key in self.withdrawn:
            return now + RETRY_MAX * 1000, False
        if now >= service.next_query:
            service.next_query = now + service.retry * 1000
            service.retry = min(service.retry * 2, RETRY_MAX)
            return service.next_query, True
        return service.next_query, False

    def _ask(self, names: list[str]) -> None:
        out = DNSOutgoing(_FLAGS_QUERY, multicast=True)
        for name in names:
            out.add_question(DNSQuestion(name, _TYPE_SRV, _CLASS_IN))
            out.add_question(DNSQuestion(name, _TYPE_TXT, _CLASS_IN))
        self.zeroconf.async_send(out)
