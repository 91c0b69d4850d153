"""The subscriber: browses DNS-SD services and turns them into worker events."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

import attrs
from zeroconf import (
    DNSAddress,  # pyright: ignore[reportPrivateImportUsage] - a documented re-export
    DNSOutgoing,  # pyright: ignore[reportPrivateImportUsage]
    DNSPointer,  # pyright: ignore[reportPrivateImportUsage]
    DNSQuestion,  # pyright: ignore[reportPrivateImportUsage]
    DNSQuestionType,
    DNSRecord,  # pyright: ignore[reportPrivateImportUsage]
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
from wool.plugins import LimitFilter
from wool_discovery_lan import _interfaces
from wool_discovery_lan._records import decode_txt, txt_seq, validate_service_type
from wool_discovery_lan._sources import packet_source

log = logging.getLogger(__name__)

DEFAULT_SERVICE_TYPE = "_wool._tcp.local."

# DNS constants (RFC 1035, RFC 2782)
_FLAGS_QUERY = 0x0000
_CLASS_IN = 1
_TYPE_A = 1
_TYPE_PTR = 12
_TYPE_TXT = 16
_TYPE_AAAA = 28
_TYPE_SRV = 33

REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
"""When a record's owner is asked again, as fractions of its TTL (RFC 6762 section 5.2)."""
STALE_WINDOW = 5.0
"""Seconds during which a record outranks those with a lower ``seq``, and a goodbye those
not newer than what it withdrew: answers a responder queued before a change arrive
within a second of it. Past that, the order no longer holds, so a forged ``seq`` or
goodbye costs a worker at most this long (plus one query)."""
MAX_SERVICES = 1024
"""Services one subscriber follows at most; records for more are ignored."""
MAX_SERVICES_PER_SOURCE = 256
"""Services one sending host may make a subscriber follow."""
RESTART_FIRST = 1.0
RESTART_MAX = 60.0
"""Seconds before a failed subscriber reopens zeroconf: doubling from RESTART_FIRST up to
RESTART_MAX (back to RESTART_FIRST once it ran that long)."""
LOG_BURST = 5
"""Log lines of one kind a subscriber writes per minute about what other hosts send; the
rest are counted, and the next line let through says how many were left out."""
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

    The host that sent a service's first records, and the hosts its A/AAAA records
    name, own it while its records live: records for that name from any other host,
    goodbyes included, are ignored. At most :data:`MAX_SERVICES` services are followed,
    :data:`MAX_SERVICES_PER_SOURCE` of them per sending host. A record that cannot be
    read is skipped on its own; when zeroconf itself fails, the subscriber logs it and
    reopens zeroconf after a growing delay, keeping what it knew.
    """

    service_type: str = attrs.field(default=DEFAULT_SERVICE_TYPE, validator=_service_type)
    interfaces: tuple[str, ...] | None = attrs.field(default=None, converter=_interfaces_converter)

    def __aiter__(self) -> AsyncGenerator[DiscoveryEvent, None]:
        return _follow(self)


async def _follow(subscriber: LanSubscriber) -> AsyncGenerator[DiscoveryEvent, None]:
    tracker = _Tracker(subscriber.service_type)
    delay = RESTART_FIRST
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            async with _browsing(subscriber, tracker):
                while True:
                    for event in tracker.poll():
                        yield event
                    await tracker.wait()
        except Exception as exc:
            if loop.time() - started >= RESTART_MAX:
                delay = RESTART_FIRST
            log.warning(
                "LAN discovery of %s failed (%s: %s); reopening zeroconf in %g s",
                subscriber.service_type,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)


@contextlib.asynccontextmanager
async def _browsing(subscriber: LanSubscriber, tracker: _Tracker) -> AsyncIterator[None]:
    """A zeroconf instance on the subscriber's interfaces, feeding ``tracker``, and a
    browser that asks for the service type's instances now and then."""
    addresses = _interfaces.resolve(subscriber.interfaces)
    zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
    browser: AsyncServiceBrowser | None = None
    try:
        tracker.zeroconf = zeroconf.zeroconf
        zeroconf.zeroconf.async_add_listener(tracker, None)
        browser = AsyncServiceBrowser(
            zeroconf.zeroconf,
            subscriber.service_type,
            handlers=[_ignore],  # the tracker reads the PTR records itself
            question_type=DNSQuestionType.QM,
        )
        yield
    finally:
        tracker.zeroconf = None
        try:
            if browser is not None:
                await browser.async_cancel()
            zeroconf.zeroconf.async_remove_listener(tracker)
        finally:
            await zeroconf.async_close()


def _ignore(
    zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
) -> None:
    """The browser's callback: nothing to do (its PTR records reach the tracker too)."""


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
    source: str | None  # the host whose records made the subscriber follow it
    owners: frozenset[str | None] = frozenset()  # hosts whose records count, while live
    announced: WorkerMetadata | None = None
    refreshed_record: float = -1.0  # `created` of the record the refreshes are for
    refreshes: int = 0
    next_query: float = 0.0  # ms; for a service whose records are missing
    retry: float = RETRY_FIRST
    pointer_until: float = 0.0  # ms, when its PTR record expires
    empty_since: float | None = None  # ms, since when it has no SRV or TXT record
    # the last TXT record read, and the worker it describes
    decoded: tuple[object, WorkerMetadata | None] = (None, None)


class _Tracker(RecordUpdateListener):
    """Follows the PTR, SRV and TXT records of a service type; diffs them against what
    was announced, and schedules queries.

    The latest SRV and TXT record received for a name from its owners is the current
    one (records are published with the cache-flush bit, so a newer one replaces an
    older one); an owner's goodbye for the current data removes it, and so does its TTL
    running out.
    """

    def __init__(self, service_type: str) -> None:
        super().__init__()
        self.zeroconf: Zeroconf | None = None
        self.service_type = service_type.lower()
        self.suffix = "." + self.service_type
        self.services: dict[str, _Service] = {}
        self.per_source: collections.Counter[str | None] = collections.Counter()
        self.records: dict[tuple[str, int], _Record] = {}
        self.withdrawn: dict[str, tuple[int, float]] = {}  # key -> (seq, when, ms)
        self.announced_uids: dict[str, str] = {}  # uid -> service key
        self.deadline: float | None = None
        self.due: dict[str, float] = {}  # key -> ms, when poll() next looks at the service
        self.dirty: set[str] = set()  # services whose records changed since the last poll
        self.woken = asyncio.Event()
        self.limit = LimitFilter(burst=LOG_BURST, level=logging.INFO)

    def async_update_records(self, zc: Zeroconf, now: float, records: list[RecordUpdate]) -> None:
        """zeroconf's callback for every packet's records (runs in the event loop)."""
        source: str | None = None
        if records:
            source = packet_source(zc, now, records[0].new)
        for update in records:
            try:
                self._receive(update.new, source, now)
            except Exception as exc:  # one bad record must not cost the others
                self.limit.log(
                    log,
                    logging.WARNING,
                    "ignoring a record for %s from %s: %s",
                    update.new.name,
                    source,
                    repr(exc),
                )

    def async_update_records_complete(self) -> None:
        """zeroconf's callback after a packet's records are cached."""

    def _receive(self, record: DNSRecord, source: str | None, now: float) -> None:
        if source is None and record.is_expired(now):
            return  # zeroconf's cache expiring it: poll() keeps its own account of TTLs
        kind = record.type
        if kind == _TYPE_PTR:
            if isinstance(record, DNSPointer) and record.key == self.service_type:
                self._pointer(record, source, now)
            return
        if kind not in (_TYPE_SRV, _TYPE_TXT):
            return
        key = record.key
        if not key.endswith(self.suffix):
            return
        service = self._service(key, record.name, source, now)
        if service is None:
            return
        if isinstance(record, DNSText):
            data: object = record.text
        elif isinstance(record, DNSService):
            data = (record.server_key, record.port)
        else:  # pragma: no cover - zeroconf parses these types into those classes
            return
        current = self.records.get((key, kind))
        if record.is_expired(now):  # a goodbye, or expired from the cache
            if current is not None and current.data == data:
                del self.records[(key, kind)]
                if kind == _TYPE_TXT:
                    self.withdrawn[key] = (current.seq, now)
        elif kind == _TYPE_TXT:
            assert isinstance(data, bytes)
            seq = txt_seq(data)
            recent = now - STALE_WINDOW * 1000
            if current is not None and current.live(now) and seq < current.seq:
                if current.created > recent:
                    return  # an answer queued before the record changed
            withdrawn = self.withdrawn.get(key)
            if withdrawn is not None and seq <= withdrawn[0] and withdrawn[1] > recent:
                return  # an answer queued before the record was withdrawn
            self.records[(key, kind)] = _Record(data, record.created, record.ttl, seq)
        else:
            self.records[(key, kind)] = _Record(data, record.created, record.ttl)
        self.dirty.add(key)
        self.woken.set()

    def _service(self, key: str, name: str, source: str | None, now: float) -> _Service | None:
        """The service ``key`` if records from ``source`` count for it (following it from
        now on if it is new and within the caps), else ``None``."""
        service = self.services.get(key)
        if service is None:
            if len(self.services) >= MAX_SERVICES:
                self.limit.log(
                    log,
                    logging.WARNING,
                    "ignoring service %s from %s: this subscriber follows %s services "
                    "already (the most it follows)",
                    name,
                    source,
                    MAX_SERVICES,
                )
                return None
            if self.per_source[source] >= MAX_SERVICES_PER_SOURCE:
                self.limit.log(
                    log,
                    logging.WARNING,
                    "ignoring service %s: host %s already announces %s services "
                    "(the most one host may)",
                    name,
                    source,
                    MAX_SERVICES_PER_SOURCE,
                )
                return None
            service = self.services[key] = _Service(name, source)
            self.per_source[source] += 1
        if not self._has_records(key, now):
            if service.owners and source not in service.owners:
                service.owners = frozenset()  # its owner's records are gone: a new start
            if not service.owners:
                service.owners = frozenset({source})
        elif source not in service.owners:
            self.limit.log(
                log,
                logging.WARNING,
                "ignoring records for %s from %s: its records come from %s",
                name,
                source,
                ", ".join(sorted(str(owner) for owner in service.owners)),
            )
            return None
        return service

    def _pointer(self, record: DNSPointer, source: str | None, now: float) -> None:
        key = record.alias.lower()
        if not key.endswith(self.suffix):
            return
        if record.is_expired(now):
            service = self.services.get(key)
            if service is not None:
                service.pointer_until = min(service.pointer_until, now)
            return
        service = self._service(key, record.alias, source, now)
        if service is not None:
            service.pointer_until = max(service.pointer_until, record.created + record.ttl * 1000)
            self.dirty.add(key)
            self.woken.set()

    def _has_records(self, key: str, now: float) -> bool:
        return any(
            (record := self.records.get((key, kind))) is not None and record.live(now)
            for kind in (_TYPE_SRV, _TYPE_TXT)
        )

    async def wait(self) -> None:
        """Until a change arrives or the next scheduled check is due."""
        timeout = None
        if self.deadline is not None:
            timeout = max(0.0, (self.deadline - current_time_millis()) / 1000)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.woken.wait()

    def poll(self) -> list[DiscoveryEvent]:
        """The events since the last poll; sends the queries that are due.

        Only the services whose records changed since, or whose next check is due, are
        looked at (all of them after a worker was dropped or changed its uid, since
        another service may have been waiting for that uid): a flood of records costs
        each poll what the flood changed, not what the subscriber follows.
        """
        self.woken.clear()
        now = current_time_millis()
        events: list[DiscoveryEvent] = []
        forget = now - STALE_WINDOW * 1000
        for key in [k for k, (_, when) in self.withdrawn.items() if when < forget]:
            del self.withdrawn[key]
        dirty, due, self.dirty = self.dirty, self.due, set()
        questions: list[str] = []
        for key in [k for k in self.services if k in dirty or due.get(k, 0.0) <= now]:
            service = self.services[key]
            self._expire(key, now)
            current, first = self._read(key, service)
            if service.announced is not None and current != service.announced:
                self.dirty.update(self.services)  # a service may wait for the uid freed
                self.woken.set()
                if current is None:
                    events.append(self._drop(key, service))
                else:
                    self.announced_uids.pop(service.announced.uid, None)
                    service.announced = current
                    self.announced_uids[current.uid] = key
                    events.append(DiscoveryEvent("worker-updated", current))
            elif service.announced is None and current is not None:
                service.announced = current
                service.owners |= self._addresses(first)
                self.announced_uids[current.uid] = key
                events.append(DiscoveryEvent("worker-added", current))
            if self._forgotten(key, service, now):
                continue
            at, ask = self._schedule(key, service, first, now)
            if ask:
                questions.append(service.name)
            due[key] = min(at, self._expiry(key))
        self.deadline = min(due.values(), default=None)
        if questions:
            self._ask(questions)
        return events

    def _expire(self, key: str, now: float) -> None:
        """Forget the SRV and TXT records of ``key`` whose TTL has run out."""
        for kind in (_TYPE_SRV, _TYPE_TXT):
            record = self.records.get((key, kind))
            if record is not None and not record.live(now):
                del self.records[(key, kind)]

    def _expiry(self, key: str) -> float:
        """When (ms) the first of the SRV and TXT records of ``key`` expires."""
        records = (self.records.get((key, kind)) for kind in (_TYPE_SRV, _TYPE_TXT))
        return min((r.at(1.0) for r in records if r is not None), default=float("inf"))

    def _forgotten(self, key: str, service: _Service, now: float) -> bool:
        """Stop following a service that has had no records for a while and whose PTR
        record is gone (after a goodbye, one query has asked whether it was real)."""
        if self._has_records(key, now):
            service.empty_since = None
            return False
        if service.empty_since is None:
            service.empty_since = now
        if now < service.pointer_until or now < service.empty_since + 2 * STALE_WINDOW * 1000:
            return False
        del self.services[key]
        self.due.pop(key, None)
        self.per_source[service.source] -= 1
        if not self.per_source[service.source]:
            del self.per_source[service.source]
        self.withdrawn.pop(key, None)
        return True

    def _addresses(self, srv: _Record | None) -> frozenset[str | None]:
        """The addresses the A/AAAA records of the SRV target of ``srv`` name."""
        if self.zeroconf is None or srv is None or not isinstance(srv.data, tuple):
            return frozenset()
        server = srv.data[0]
        found: set[str | None] = set()
        for kind in (_TYPE_A, _TYPE_AAAA):
            for record in self.zeroconf.cache.get_all_by_details(server, kind, _CLASS_IN):
                if isinstance(record, DNSAddress):
                    with contextlib.suppress(ValueError):
                        found.add(str(ipaddress.ip_address(record.address)))
        return frozenset(found)

    def _drop(self, key: str, service: _Service) -> DiscoveryEvent:
        assert service.announced is not None
        dropped, service.announced = service.announced, None
        if self.announced_uids.get(dropped.uid) == key:
            del self.announced_uids[dropped.uid]
        return DiscoveryEvent("worker-dropped", dropped)

    def _read(self, key: str, service: _Service) -> tuple[WorkerMetadata | None, _Record | None]:
        """The worker described under ``service`` (when its records are complete), and
        its SRV record."""
        srv = self.records.get((key, _TYPE_SRV))
        txt = self.records.get((key, _TYPE_TXT))
        if srv is None or txt is None:
            return None, None
        if service.decoded[0] != txt.data:
            service.decoded = (txt.data, self._decode(service, txt.data))  # type: ignore[arg-type]
        metadata = service.decoded[1]
        if metadata is None:
            return None, None
        owner = self.announced_uids.get(metadata.uid)
        if owner is not None and owner != key:
            self.limit.log(
                log,
                logging.INFO,
                "ignoring service %s: worker %s is announced by %s",
                service.name,
                metadata.uid,
                owner,
            )
            return None, None
        return metadata, srv

    def _decode(self, service: _Service, text: bytes) -> WorkerMetadata | None:
        try:
            return decode_txt(text)
        except Exception as exc:
            self.limit.log(log, logging.INFO, "ignoring service %s: %s", service.name, exc)
            return None

    def _schedule(
        self, key: str, service: _Service, srv: _Record | None, now: float
    ) -> tuple[float, bool]:
        """When ``service`` needs looking at next, and whether to query it now.

        A known worker is queried at the refresh points of the first of its records to
        expire and looked at again when that expires. A service with missing records is
        queried with a growing interval, starting :data:`STALE_WINDOW` after a goodbye
        (a goodbye may be forged: the query tells).
        """
        txt = self.records.get((key, _TYPE_TXT))
        if srv is not None and txt is not None:
            record = min(srv, txt, key=lambda r: r.at(1.0))
            service.retry = RETRY_FIRST
            service.next_query = 0.0
            if record.created != service.refreshed_record:
                service.refreshed_record, service.refreshes = record.created, 0
            ask = False
            while service.refreshes < len(REFRESH_POINTS) and now >= record.at(
                REFRESH_POINTS[service.refreshes]
            ):
                service.refreshes += 1
                ask = True
            if service.refreshes < len(REFRESH_POINTS):
                due = record.at(REFRESH_POINTS[service.refreshes])
            else:
                due = record.at(1.0)
            return min(due, self._forget_at(service)), ask
        withdrawn = self.withdrawn.get(key)
        if withdrawn is not None:
            return withdrawn[1] + STALE_WINDOW * 1000, False
        if now >= service.next_query:
            service.next_query = now + service.retry * 1000
            service.retry = min(service.retry * 2, RETRY_MAX)
            return min(service.next_query, self._forget_at(service)), True
        return min(service.next_query, self._forget_at(service)), False

    @staticmethod
    def _forget_at(service: _Service) -> float:
        if service.empty_since is None:
            return float("inf")
        return max(service.pointer_until, service.empty_since + 2 * STALE_WINDOW * 1000)

    def _ask(self, names: list[str]) -> None:
        if self.zeroconf is None:
            return
        out = DNSOutgoing(_FLAGS_QUERY, multicast=True)
        for name in names:
            out.add_question(DNSQuestion(name, _TYPE_SRV, _CLASS_IN))
            out.add_question(DNSQuestion(name, _TYPE_TXT, _CLASS_IN))
        self.zeroconf.async_send(out)
