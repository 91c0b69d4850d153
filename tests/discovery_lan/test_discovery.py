"""Publishing and subscribing over real multicast DNS, inside a loopback-only namespace."""

from __future__ import annotations

import logging

import pytest

from tests.discovery_lan.conftest import metadata, socket_count
from tests.support import netns
from tests.support.events import added, dropped, following, updated
from wool_discovery_lan import ENVIRONMENT_VARIABLE, LanDiscovery
from wool_discovery_lan._interfaces import resolve


@pytest.fixture
def discovery(lan: netns.Namespace) -> LanDiscovery:
    return LanDiscovery(["lo"])


async def test_metadata_makes_the_round_trip_intact(discovery: LanDiscovery):
    worker = metadata("w1", address="[::1]:4242", tags={"gpu", "fast,cheap"}, secure=True)
    async with discovery.publisher as publisher:
        await publisher.publish(added(worker))
        async with following(discovery.subscriber) as events:
            event = await events.next()
    assert event == added(worker)
    assert event.metadata.tags == {"gpu", "fast,cheap"}
    assert event.metadata.secure is True


async def test_a_worker_known_by_host_name_makes_the_round_trip(discovery: LanDiscovery):
    worker = metadata("w1", address="worker-host.example:4242")
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(added(worker))
        assert await events.next() == added(worker)


async def test_added_updated_and_dropped_are_followed(discovery: LanDiscovery):
    first = metadata("w1", tags={"a"})
    moved = metadata("w1", address="127.0.0.1:6000", tags={"b"})
    second = metadata("w2")
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(added(first))
        assert await events.next() == added(first)
        await publisher.publish(updated(moved))
        assert await events.next() == updated(moved)
        await publisher.publish(dropped(moved))
        assert await events.next() == dropped(moved)
        await publisher.publish(added(second))
        assert await events.next() == added(second)
        await publisher.publish(added(first))  # the dropped uid comes back
        assert await events.next() == added(first)


async def test_adding_a_known_uid_replaces_the_worker(discovery: LanDiscovery):
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(added(metadata("w1")))
        assert await events.next() == added(metadata("w1"))
        await publisher.publish(added(metadata("w1", tags={"new"})))
        assert await events.next() == updated(metadata("w1", tags={"new"}))


async def test_updating_an_unknown_uid_adds_it_and_dropping_one_is_harmless(
    discovery: LanDiscovery,
):
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(dropped(metadata("nobody")))
        await publisher.publish(updated(metadata("w1")))
        assert await events.next() == added(metadata("w1"))


async def test_each_iteration_and_each_subscriber_sees_the_workers(discovery: LanDiscovery):
    worker = metadata("w1")
    subscriber = discovery.subscriber
    async with discovery.publisher as publisher:
        await publisher.publish(added(worker))
        async with following(subscriber) as a, following(subscriber) as b:
            async with following(LanDiscovery(["127.0.0.1"]).subscriber) as c:
                assert [await e.next() for e in (a, b, c)] == [added(worker)] * 3


async def test_a_publisher_withdraws_only_its_own_workers(discovery: LanDiscovery):
    mine, theirs = metadata("mine"), metadata("theirs", address="127.0.0.1:5001")
    other = LanDiscovery(["lo"])
    async with other.publisher as other_publisher, following(discovery.subscriber) as events:
        await other_publisher.publish(added(theirs))
        assert await events.next() == added(theirs)
        async with discovery.publisher as publisher:
            await publisher.publish(added(mine))
            assert await events.next() == added(mine)
        assert await events.next() == dropped(mine)
        async with following(discovery.subscriber) as late:
            assert await late.next() == added(theirs)


async def test_a_publisher_can_be_entered_again_but_not_twice_at_once(discovery: LanDiscovery):
    publisher = discovery.publisher
    async with following(discovery.subscriber) as events:
        async with publisher:
            with pytest.raises(RuntimeError, match="already entered"):
                await publisher.__aenter__()
            await publisher.publish(added(metadata("w1")))
            assert await events.next() == added(metadata("w1"))
        assert await events.next() == dropped(metadata("w1"))
        async with publisher:
            await publisher.publish(added(metadata("w2")))
            assert await events.next() == added(metadata("w2"))


async def test_an_oversized_record_is_refused_before_anything_is_sent(discovery: LanDiscovery):
    huge = metadata("w1", tags={f"{i:0200}" for i in range(10)})
    async with discovery.publisher as publisher:
        with pytest.raises(ValueError, match="TXT record"):
            await publisher.publish(added(huge))
        assert "0 workers" in repr(publisher)


async def test_cancelling_the_iterating_task_releases_its_zeroconf(discovery: LanDiscovery):
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("w1")))
        with_publisher = socket_count()
        async with following(discovery.subscriber) as events:  # iterates in a task
            assert await events.next() == added(metadata("w1"))
            assert socket_count() > with_publisher
        # leaving cancels the task while the iteration waits for the next change
        assert events.task.cancelled()
        assert socket_count() == with_publisher


async def test_the_environment_variable_pins_the_interfaces(
    lan: netns.Namespace, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "lo")
    assert resolve(None) == ["127.0.0.1"]
    discovery = LanDiscovery()
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(added(metadata("w1")))
        assert await events.next() == added(metadata("w1"))


def test_interfaces_resolve_to_this_hosts_ipv4_addresses(
    lan: netns.Namespace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from zeroconf import InterfaceChoice

    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    assert resolve(("lo",)) == ["127.0.0.1"]
    assert resolve(("127.0.0.1", "lo")) == ["127.0.0.1"]
    assert resolve(None) is InterfaceChoice.All
    with caplog.at_level(logging.WARNING):
        # configured on another host (a subscriber that travelled with a task)
        assert resolve(("198.18.0.3",)) is InterfaceChoice.All
        monkeypatch.setenv(ENVIRONMENT_VARIABLE, "lo")
        assert resolve(("198.18.0.3", "eth7")) == ["127.0.0.1"]
    assert "198.18.0.3" in caplog.text and "not on this host" in caplog.text
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "::1")
    with pytest.raises(ValueError, match=ENVIRONMENT_VARIABLE):
        resolve(None)
