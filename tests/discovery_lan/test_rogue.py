"""A rogue host on the same link as a worker and a caller forges multicast DNS answers.

Three namespaces on a bridge: the worker's publisher (198.18.0.1, another process), the
caller's subscriber (198.18.0.2, this test's thread) and the rogue (198.18.0.3), which
sends hand-built responses from its own address or from a spoofed one.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from zeroconf import DNSPointer, DNSRecord, DNSService, DNSText

from tests.discovery_lan.conftest import metadata, publisher_process
from tests.discovery_lan.rogue import Rogue, rogue
from tests.support import conditions, netns
from tests.support.events import Events, added, dropped, following, updated
from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_lan import DEFAULT_SERVICE_TYPE, LanDiscovery, encode_txt
from wool_discovery_lan._records import txt_bytes

WORKER = "198.18.0.1"
CALLER = "198.18.0.2"
SUBSCRIBER_LOG = "wool_discovery_lan._subscriber"
COMEBACK_TIMEOUT = 30.0
"""Several times the subscriber's stale window (5 s) and a query's round trip."""


@pytest.fixture
def segment(namespaces_available: None) -> Iterator[netns.Network]:
    """The three hosts; the test runs inside the caller's namespace."""
    with netns.network("worker", "caller", "rogue") as network:
        with network.hosts["caller"].namespace.entered():
            yield network
    left = set(netns.namespaces(netns.RUN)) & {
        network.switch.name,
        *(h.namespace.name for h in network.hosts.values()),
    }
    assert not left, f"namespaces left behind: {sorted(left)}"


async def _ignored_or_event(events: Events, caplog: pytest.LogCaptureFixture) -> None:
    """Until the subscriber logged that it ignored a host's records, or an event came."""
    await conditions.until(
        lambda: bool(events.queue.qsize()) or "ignoring records for" in caplog.text,
        "the subscriber ignores the records or gives an event",
        step=0.02,
    )


@contextlib.asynccontextmanager
async def scene(
    segment: netns.Network, worker: WorkerMetadata
) -> AsyncIterator[tuple[netns.Process, Rogue, Events]]:
    """``worker`` published from the worker host, the rogue, and the caller's subscriber
    once it has seen ``worker``."""
    async with (
        publisher_process(segment.hosts["worker"].namespace, [worker], 60, WORKER) as publisher,
        rogue(segment.hosts["rogue"]) as attacker,
        following(LanDiscovery([CALLER]).subscriber) as events,
    ):
        assert await events.next() == added(worker)
        yield publisher, attacker, events


def _publish(worker: WorkerMetadata, kind: str = "worker-updated") -> dict[str, object]:
    return {"type": kind, "metadata": worker.to_dict()}


async def test_a_goodbye_from_another_host_does_not_drop_the_worker(
    segment: netns.Network, caplog: pytest.LogCaptureFixture
):
    worker = metadata("w1", address=f"{WORKER}:4242")
    moved = metadata("w1", address=f"{WORKER}:4243")
    caplog.set_level(logging.WARNING, SUBSCRIBER_LOG)
    async with scene(segment, worker) as (publisher, attacker, events):
        info = await attacker.service(DEFAULT_SERVICE_TYPE, "w1")
        attacker.send(
            [info.dns_pointer(override_ttl=0), info.dns_service(override_ttl=0)]
            + [info.dns_text(override_ttl=0)]
            + info.dns_addresses(override_ttl=0)
        )
        await _ignored_or_event(events, caplog)
        assert events.pending() == [], "the forged goodbye dropped the worker"
        assert "from 198.18.0.3: its records come from 198.18.0.1" in caplog.text
        await publisher.request("publish", **_publish(moved))
        assert await events.next() == updated(moved)


async def test_a_record_with_a_huge_seq_from_another_host_is_ignored(
    segment: netns.Network, caplog: pytest.LogCaptureFixture
):
    worker = metadata("w1", address=f"{WORKER}:4242")
    hijacked = metadata("w1", address="198.18.0.3:4242")
    moved = metadata("w1", address=f"{WORKER}:4243")
    caplog.set_level(logging.WARNING, SUBSCRIBER_LOG)
    async with scene(segment, worker) as (publisher, attacker, events):
        info = await attacker.service(DEFAULT_SERVICE_TYPE, "w1")
        forged = txt_bytes(encode_txt(hijacked, seq=10**19))
        attacker.send([_text(info.name, forged, ttl=4500)])
        await _ignored_or_event(events, caplog)
        assert events.pending() == [], "the forged record replaced the worker's"
        await publisher.request("publish", **_publish(moved))
        assert await events.next() == updated(moved)


async def test_a_worker_comes_back_after_a_goodbye_forged_with_its_own_address(
    segment: netns.Network,
):
    """The rogue spoofs the worker's address (nothing on the wire tells them apart): it
    sends a record with a huge seq, then a goodbye for it. The subscriber drops the
    worker, asks again once the stale window has passed, and the worker's answer (with
    its old, lower seq) brings it back."""
    worker = metadata("w1", address=f"{WORKER}:4242")
    hijacked = metadata("w1", address="198.18.0.3:4242")
    async with scene(segment, worker) as (_, attacker, events):
        info = await attacker.service(DEFAULT_SERVICE_TYPE, "w1")
        forged = txt_bytes(encode_txt(hijacked, seq=10**19))
        attacker.send([_text(info.name, forged, ttl=4500)], source=WORKER)
        assert await events.next() == updated(hijacked)
        attacker.send(
            [info.dns_pointer(override_ttl=0), _text(info.name, forged, ttl=0)], source=WORKER
        )
        assert await events.next() == dropped(hijacked)
        comeback = await events.next(timeout=COMEBACK_TIMEOUT)
        assert comeback == DiscoveryEvent("worker-added", worker)


def _text(name: str, data: bytes, ttl: int) -> DNSText:
    return DNSText(name, 16, 1 | 0x8000, ttl, data)


async def test_malformed_records_are_skipped_one_by_one(
    segment: netns.Network, caplog: pytest.LogCaptureFixture
):
    """Records whose seq is a non-ASCII digit or whose tags nest thousands deep cost
    nothing but themselves: the worker published next is seen."""
    worker = metadata("w1", address=f"{WORKER}:4242")
    later = metadata("w2", address=f"{WORKER}:4243")
    caplog.set_level(logging.INFO, SUBSCRIBER_LOG)
    base = {"txtvers": "1", "address": "198.18.0.3:1", "pid": "1", "version": "v"}
    nested = "[" * 3000 + "]" * 3000
    deep = {f"tags.{i}": nested[i * 200 : (i + 1) * 200] for i in range(len(nested) // 200)}
    async with scene(segment, worker) as (publisher, attacker, events):
        for uid, fields in [
            ("bad-seq", {**base, "uid": "bad-seq", "seq": "²"}),
            ("bad-tags", {**base, "uid": "bad-tags", **deep}),
        ]:
            name = f"{uid}.{DEFAULT_SERVICE_TYPE}"
            attacker.send(
                [
                    DNSService(name, 33, 1 | 0x8000, 60, 0, 0, 1, "rogue.local."),
                    _text(name, txt_bytes(fields), ttl=60),
                ]
            )
        await publisher.request("publish", **_publish(later, "worker-added"))
        # a seq that cannot be read counts as 0: the record is otherwise a worker's
        odd = WorkerMetadata.from_dict({**base, "uid": "bad-seq"})
        assert {await events.next(), await events.next()} == {added(odd), added(later)}
        assert events.pending() == []
    assert "ignoring service bad-tags" in caplog.text


async def test_a_flood_of_services_is_capped_per_host_and_in_all(
    segment: netns.Network, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """The rogue announces 30 services from its own address and 30 from each of two
    spoofed ones; the subscriber follows at most 15 per host and 40 in all (the caps are
    lowered for the test: 256 and 1024 by default)."""
    from wool_discovery_lan import _subscriber

    monkeypatch.setattr(_subscriber, "MAX_SERVICES", 40)
    monkeypatch.setattr(_subscriber, "MAX_SERVICES_PER_SOURCE", 15)
    caplog.set_level(logging.WARNING, SUBSCRIBER_LOG)
    worker = metadata("w1", address=f"{WORKER}:4242")
    moved = metadata("w1", address=f"{WORKER}:4243")
    sources = [None, "198.18.0.4", "198.18.0.5"]
    async with scene(segment, worker) as (publisher, attacker, events):
        for number, source in enumerate(sources):
            records: list[DNSRecord] = []
            for index in range(30):
                fake = metadata(f"fake-{number}-{index}", address=f"198.18.0.3:{1000 + index}")
                fake = WorkerMetadata.from_dict({**fake.to_dict(), "secure": True})
                name = f"{fake.uid}.{DEFAULT_SERVICE_TYPE}"
                records += [
                    DNSPointer(DEFAULT_SERVICE_TYPE, 12, 1, 4500, name),
                    DNSService(name, 33, 1 | 0x8000, 4500, 0, 0, fake.port, "rogue.local."),
                    _text(name, txt_bytes(encode_txt(fake, seq=1)), ttl=4500),
                ]
            attacker.send(records, source=source)
        await publisher.request("publish", **_publish(moved))
        seen: list[DiscoveryEvent] = []
        while (event := await events.next()) != updated(moved):
            seen.append(event)
    assert {event.type for event in seen} == {"worker-added"}
    per_host = collections.Counter(event.metadata.uid.split("-")[1] for event in seen)
    assert per_host == {"0": 15, "1": 15, "2": 9}  # 1 + 15 + 15 + 9 = 40 in all
    assert "already announces 15 services" in caplog.text
    assert "follows 40 services already" in caplog.text
