"""EtcdDiscovery against a real etcd: liveness through leases, outages, compaction."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable

import pytest

from tests.discovery_etcd._etcd import EtcdServer, free_port
from tests.discovery_etcd.conftest import SHORT_TTL, publisher_process, refused, round_trip
from tests.support import conditions
from tests.support.events import Events, added, dropped, following, updated
from wool import DiscoveryEvent, WorkerMetadata
from wool.testing import worker_metadata as metadata
from wool_discovery_etcd import EtcdDiscovery, EtcdUnavailable, IncompatibleNamespace

CONVERGE_TIMEOUT = 30.0


def discovery(server: EtcdServer, namespace: str, **options) -> EtcdDiscovery:
    return EtcdDiscovery(namespace, endpoints=[server.endpoint], **options)


async def condition(check: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Until ``check()`` holds; fails after ``timeout`` seconds."""
    await conditions.until(check, what, timeout, step=0.05)


async def converge(
    events: Events,
    state: dict[str, WorkerMetadata],
    expected: dict[str, WorkerMetadata],
    timeout: float = CONVERGE_TIMEOUT,  # noqa: ASYNC109 (the failure names what never converged)
) -> None:
    """Apply events to ``state`` until it equals ``expected``."""
    async with asyncio.timeout(timeout):
        while state != expected:
            event = await events.next(timeout)
            if event.type == "worker-dropped":
                state.pop(event.metadata.uid)
            else:
                assert (event.metadata.uid in state) == (event.type == "worker-updated"), event
                state[event.metadata.uid] = event.metadata


def leases(server: EtcdServer, namespace: str) -> set[int]:
    """The leases the worker records of ``namespace`` are attached to."""
    out = json.loads(server.etcdctl("get", "--prefix", f"/wool/{namespace}/workers/", "-w", "json"))
    return {kv.get("lease", 0) for kv in out.get("kvs", [])}


def revision(server: EtcdServer) -> int:
    out = json.loads(server.etcdctl("endpoint", "status", "-w", "json"))
    return out[0]["Status"]["header"]["revision"]


async def test_a_killed_publisher_is_dropped_within_its_ttl(etcd: EtcdServer, namespace: str):
    workers = [metadata(), metadata()]
    async with following(discovery(etcd, namespace).subscriber) as events:
        async with publisher_process(etcd.endpoint, namespace, workers, SHORT_TTL) as process:
            assert set(await events.take(2)) == {added(w) for w in workers}
            process.send_signal(signal.SIGKILL)
            await process.wait()
            async with asyncio.timeout(SHORT_TTL + 1):
                seen = await events.take(2)
    assert set(seen) == {dropped(w) for w in workers}


async def test_a_publisher_process_that_stops_cleanly_is_dropped_at_once(
    etcd: EtcdServer, namespace: str
):
    worker = metadata()
    async with following(discovery(etcd, namespace).subscriber) as events:
        # a TTL far longer than the wait below: only the revoked lease can explain the drop
        async with publisher_process(etcd.endpoint, namespace, [worker], 60) as process:
            assert await events.next() == added(worker)
            assert process.stdin is not None
            process.stdin.close()
            async with asyncio.timeout(0.5):
                assert await events.next() == dropped(worker)
            assert await process.wait() == 0


async def test_a_dropped_worker_and_a_left_publisher_are_gone_at_once(
    etcd: EtcdServer, namespace: str
):
    first, second = metadata(), metadata()
    d = discovery(etcd, namespace, ttl=60)
    async with following(d.subscriber) as events:
        async with d.publisher as publisher:
            await publisher.publish(added(first))
            await publisher.publish(added(second))
            assert await events.take(2) == [added(first), added(second)]
            await publisher.publish(dropped(first))
            async with asyncio.timeout(0.5):
                assert await events.next() == dropped(first)
        async with asyncio.timeout(0.5):
            assert await events.next() == dropped(second)


async def test_republishing_with_new_tags_is_an_update_and_the_same_record_nothing(
    etcd: EtcdServer, namespace: str
):
    worker = metadata(tags={"a"})
    retagged = metadata(worker.uid, tags={"a", "gpu"})
    sentinel = metadata()
    d = discovery(etcd, namespace)
    async with d.publisher as publisher, following(d.subscriber) as events:
        await publisher.publish(added(worker))
        assert await events.next() == added(worker)
        await publisher.publish(added(retagged))
        assert await events.next() == updated(retagged)
        await publisher.publish(updated(retagged))  # nothing changed: no event
        await publisher.publish(added(sentinel))
        assert await events.next() == added(sentinel)
        assert events.pending() == []


async def test_a_paused_cluster_expires_the_lease_and_the_publisher_takes_a_new_one(
    own_etcd: EtcdServer,
):
    workers = [metadata(), metadata()]
    expected = {w.uid: w for w in workers}
    d = discovery(own_etcd, "paused", ttl=SHORT_TTL)
    async with d.publisher as publisher, following(d.subscriber) as events:
        for worker in workers:
            await publisher.publish(added(worker))
        state: dict[str, WorkerMetadata] = {}
        await converge(events, state, expected)
        old = publisher.lease
        own_etcd.pause()
        try:
            # the fault under test is an outage longer than the TTL: hold it that long
            await asyncio.sleep(SHORT_TTL + 2)
        finally:
            own_etcd.resume()
        await condition(lambda: publisher.lease != old, CONVERGE_TIMEOUT, "a new lease")
        await condition(
            lambda: leases(own_etcd, "paused") == {publisher.lease},
            CONVERGE_TIMEOUT,
            "the records re-published under the new lease",
        )
        await converge(events, state, expected)
        sentinel = metadata()
        await publisher.publish(added(sentinel))
        await converge(events, state, {**expected, sentinel.uid: sentinel})


async def changes_while_away(
    server: EtcdServer, *, compact: bool
) -> tuple[list[DiscoveryEvent], list[DiscoveryEvent]]:
    """A subscriber follows two workers; etcd is SIGKILLed and restarted serving only its
    side URL, through which a publisher adds, drops and updates a worker (and, with
    ``compact``, etcd compacts its history); then etcd serves the subscriber's URL again.
    Returns the changes made and the events the subscriber delivered for them (a
    sentinel published last proves that nothing else came)."""
    first, second, third = metadata(), metadata(tags={"v1"}), metadata()
    second_v2 = metadata(second.uid, tags={"v2"})
    sentinel = metadata()
    side = EtcdDiscovery("away", endpoints=[server.side_endpoint], ttl=60)
    async with side.publisher as publisher:
        await publisher.publish(added(first))
        await publisher.publish(added(second))
        async with following(discovery(server, "away").subscriber) as events:
            assert await events.take(2) == [added(first), added(second)]
            server.restart(serve_main=False, kill=True)
            changes = [added(third), dropped(first), updated(second_v2)]
            for change in changes:
                await publisher.publish(change)
            if compact:
                server.etcdctl("compact", str(revision(server)), "--physical")
            server.restart()
            seen = await events.take(len(changes), timeout=CONVERGE_TIMEOUT)
            await publisher.publish(added(sentinel))
            assert await events.next(CONVERGE_TIMEOUT) == added(sentinel)
            assert events.pending() == []
    return changes, seen


async def test_a_subscriber_resumes_after_etcd_restarts_without_duplicates_or_gaps(
    own_etcd: EtcdServer,
):
    changes, seen = await changes_while_away(own_etcd, compact=False)
    assert seen == changes


async def test_after_a_compaction_a_subscriber_lists_again_and_emits_the_difference(
    own_etcd: EtcdServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="wool_discovery_etcd")
    changes, seen = await changes_while_away(own_etcd, compact=True)
    assert seen[0].type == "worker-dropped"  # the difference starts with the drops
    assert sorted(seen, key=str) == sorted(changes, key=str)
    assert any("compacted" in r.getMessage() for r in caplog.records)


async def test_an_unreachable_cluster_is_a_clear_error():
    endpoint = f"http://127.0.0.1:{free_port()}"
    d = EtcdDiscovery("x", endpoints=endpoint, connect_timeout=1)
    await refused(
        d, EtcdUnavailable, r"cannot reach etcd at http://127\.0\.0\.1:\d+.*check that the cluster"
    )


async def test_a_dead_endpoint_fails_over_to_the_next(etcd: EtcdServer, namespace: str):
    dead = f"http://127.0.0.1:{free_port()}"
    d = EtcdDiscovery(namespace, endpoints=[dead, etcd.endpoint])
    await round_trip(d)


async def test_a_namespace_of_another_record_format_is_refused(etcd: EtcdServer, namespace: str):
    etcd.etcdctl("put", f"/wool/{namespace}/format", "2")
    try:
        await refused(discovery(etcd, namespace), IncompatibleNamespace, "format '2'.*upgrade wool")
    finally:
        etcd.etcdctl("del", f"/wool/{namespace}/format")


async def test_a_malformed_record_is_logged_and_skipped(
    etcd: EtcdServer, namespace: str, caplog: pytest.LogCaptureFixture
):
    bad = f"/wool/{namespace}/workers/bad"
    etcd.etcdctl("put", bad, '{"format": 1, "uid": "bad"}')
    worker = metadata()
    d = discovery(etcd, namespace)
    try:
        async with d.publisher as publisher, following(d.subscriber) as events:
            await publisher.publish(added(worker))
            assert await events.next() == added(worker)
            assert events.pending() == []
    finally:
        etcd.etcdctl("del", bad)
    assert any("ignoring the record" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoints": "ftp://h:1"}, "neither http nor https"),
        ({"endpoints": "http://h"}, "no port"),
        ({"endpoints": "http://h:99999"}, "port is not a number"),
        ({"endpoints": ["http://a:1", "https://b:1"]}, "mix http and https"),
        ({"endpoints": ""}, "no etcd endpoint"),
        ({"ttl": 1}, "ttl must be"),
        ({"ca_file": "ca.pem"}, "use https://"),
        ({"endpoints": "https://h:1", "cert_file": "c.pem"}, "both cert_file and key_file"),
        ({"password_file": "p"}, "without a username"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        EtcdDiscovery("x", **options)


@pytest.mark.parametrize("namespace", ["", "a/b", "x" * 101])
def test_a_bad_namespace_is_refused(namespace: str):
    with pytest.raises(ValueError, match="bad namespace"):
        EtcdDiscovery(namespace)


def test_endpoints_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WOOL_ETCD_ENDPOINTS", raising=False)
    assert EtcdDiscovery().endpoints == ("http://127.0.0.1:2379",)
    monkeypatch.setenv("WOOL_ETCD_ENDPOINTS", "https://a:2379, https://[::1]:2380")
    assert EtcdDiscovery().endpoints == ("https://a:2379", "https://[::1]:2380")
    assert EtcdDiscovery(endpoints=["b:1"]).endpoints == ("http://b:1",)
