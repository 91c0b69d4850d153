"""Publishing and subscribing within one process, on real shared memory."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import pickle
import tomllib
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

import cloudpickle
import pytest

import wool
import wool_discovery_local
from tests.discovery_local.conftest import (
    added,
    dropped,
    metadata,
    next_event,
    read_table,
    updated,
)
from wool_discovery_local import LocalDiscovery, LocalPublisher, LocalSubscriber
from wool_discovery_local._liveness import start_time
from wool_discovery_local._names import Paths
from wool_discovery_local._segment import Attachment
from wool_discovery_local._table import PAYLOAD_CAPACITY


def test_it_implements_the_discovery_protocols(discovery: LocalDiscovery):
    assert isinstance(discovery, wool.DiscoveryLike)
    assert isinstance(discovery.publisher, wool.DiscoveryPublisherLike)
    assert isinstance(discovery.subscriber, wool.DiscoverySubscriberLike)


def test_it_is_declared_as_the_local_entry_point_of_wool_discovery():
    pyproject = Path(wool_discovery_local.__file__).parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from the source tree")
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]
    assert declared["wool.discovery"] == {"local": "wool_discovery_local:LocalDiscovery"}


def test_the_installed_entry_point_names_it():
    try:
        dist = importlib.metadata.distribution("wool-discovery-local")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("wool-discovery-local is not installed")
    (entry_point,) = dist.entry_points.select(group="wool.discovery", name="local")
    assert entry_point.load() is LocalDiscovery


async def test_metadata_makes_the_round_trip_intact(discovery: LocalDiscovery):
    worker = metadata("w1", address="[::1]:4242", tags={"gpu", "fast"}, secure=True)
    async with discovery.publisher as publisher:
        await publisher.publish(added(worker))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            event = await next_event(events)
    assert event == added(worker)
    assert event.metadata.tags == frozenset({"gpu", "fast"})
    assert event.metadata.secure is True


async def test_added_updated_and_dropped_are_followed(discovery: LocalDiscovery):
    first, moved = metadata("w1"), metadata("w1", address="127.0.0.1:6000")
    async with discovery.publisher as publisher:
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            await publisher.publish(added(first))
            assert await next_event(events) == added(first)
            await publisher.publish(updated(moved))
            assert await next_event(events) == updated(moved)
            await publisher.publish(dropped(moved))
            assert await next_event(events) == dropped(moved)
            second = metadata("w2")
            await publisher.publish(added(second))
            assert await next_event(events) == added(second)


async def test_adding_a_known_uid_replaces_the_worker(discovery: LocalDiscovery):
    async with discovery.publisher as publisher:
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            await publisher.publish(added(metadata("w1")))
            assert (await next_event(events)).type == "worker-added"
            await publisher.publish(added(metadata("w1", tags={"new"})))
            assert await next_event(events) == updated(metadata("w1", tags={"new"}))


async def test_a_late_subscriber_sees_existing_workers_in_publication_order(
    discovery: LocalDiscovery,
):
    workers = [metadata(f"w{i}") for i in range(5)]
    async with discovery.publisher as publisher:
        for worker in workers:
            await publisher.publish(added(worker))
        await publisher.publish(dropped(workers[1]))
        await publisher.publish(added(workers[1]))  # re-added: now the last one
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            seen = [await next_event(events) for _ in workers]
    expected = [workers[0], *workers[2:], workers[1]]
    assert seen == [added(w) for w in expected]


async def test_each_iteration_starts_from_the_current_workers(discovery: LocalDiscovery):
    subscriber = discovery.subscriber
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("w1")))
        async with contextlib.aclosing(aiter(subscriber)) as a:
            assert await next_event(a) == added(metadata("w1"))
            async with contextlib.aclosing(aiter(subscriber)) as b:
                assert await next_event(b) == added(metadata("w1"))


async def test_leaving_the_publisher_withdraws_its_workers(discovery: LocalDiscovery):
    worker = metadata("w1")
    async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
        async with discovery.publisher as publisher:
            await publisher.publish(added(worker))
            assert await next_event(events) == added(worker)
        assert await next_event(events) == dropped(worker)


async def test_a_publisher_withdraws_only_its_own_workers(namespace: str):
    mine, theirs = metadata("mine"), metadata("theirs")
    other = LocalDiscovery(namespace)
    async with other.publisher as other_publisher:
        await other_publisher.publish(added(theirs))
        discovery = LocalDiscovery(namespace)
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            async with discovery.publisher as publisher:
                await publisher.publish(added(mine))
                assert {await next_event(events), await next_event(events)} == {
                    added(mine),
                    added(theirs),
                }
            assert await next_event(events) == dropped(mine)
            _, records = read_table(namespace)
            assert [r.metadata for r in records] == [theirs]


async def test_the_subscriber_survives_cloudpickle_and_pickle(discovery: LocalDiscovery):
    worker = metadata("w1")
    for copy in (
        cloudpickle.loads(cloudpickle.dumps(discovery.subscriber)),
        pickle.loads(pickle.dumps(discovery.subscriber)),
    ):
        assert isinstance(copy, LocalSubscriber)
        assert copy == discovery.subscriber
    async with discovery.publisher as publisher:
        await publisher.publish(added(worker))
        copy = cloudpickle.loads(cloudpickle.dumps(discovery.subscriber))
        async with contextlib.aclosing(aiter(copy)) as events:
            assert await next_event(events) == added(worker)
            await publisher.publish(dropped(worker))
            assert await next_event(events) == dropped(worker)


async def test_the_discovery_pickles_even_while_its_publisher_is_entered(
    discovery: LocalDiscovery,
):
    async with discovery.publisher:
        copy = cloudpickle.loads(cloudpickle.dumps(discovery))
    assert copy.namespace == discovery.namespace
    assert copy.publisher is not discovery.publisher


async def test_a_worker_whose_process_dies_is_dropped_and_removed(
    discovery: LocalDiscovery, namespace: str, sleeper: Callable[[], Popen[bytes]]
):
    proc = sleeper()
    doomed, survivor = metadata("doomed", pid=proc.pid), metadata("survivor")
    async with discovery.publisher as publisher:
        await publisher.publish(added(doomed))
        await publisher.publish(added(survivor))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert [await next_event(events), await next_event(events)] == [
                added(doomed),
                added(survivor),
            ]
            proc.kill()  # not reaped yet: a zombie counts as dead
            assert await next_event(events) == dropped(doomed)
            proc.wait(10)
        _, records = read_table(namespace)
        assert [r.metadata for r in records] == [survivor]


async def test_a_worker_already_dead_when_published_is_never_announced(
    discovery: LocalDiscovery, sleeper: Callable[[], Popen[bytes]]
):
    proc = sleeper()
    proc.kill()
    proc.wait(10)
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("ghost", pid=proc.pid)))
        await publisher.publish(added(metadata("real")))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert await next_event(events) == added(metadata("real"))


async def test_namespaces_are_isolated(namespace: str):
    a, b = LocalDiscovery(namespace), LocalDiscovery(namespace + "-other")
    async with a.publisher as pa, b.publisher as pb:
        await pa.publish(added(metadata("in-a")))
        await pb.publish(added(metadata("in-b")))
        async with (
            contextlib.aclosing(aiter(a.subscriber)) as events_a,
            contextlib.aclosing(aiter(b.subscriber)) as events_b,
        ):
            assert await next_event(events_a) == added(metadata("in-a"))
            assert await next_event(events_b) == added(metadata("in-b"))
            await pa.publish(added(metadata("in-a-2")))
            await pb.publish(dropped(metadata("in-b")))
            assert await next_event(events_a) == added(metadata("in-a-2"))
            assert await next_event(events_b) == dropped(metadata("in-b"))


async def test_publish_rejects_what_it_cannot_store(discovery: LocalDiscovery):
    publisher = discovery.publisher
    with pytest.raises(RuntimeError, match="not entered"):
        await publisher.publish(added(metadata("w1")))
    async with publisher:
        with pytest.raises(TypeError, match="DiscoveryEvent"):
            await publisher.publish("worker-added")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=f"at most {PAYLOAD_CAPACITY}"):
            await publisher.publish(added(metadata("big", tags={"t" * PAYLOAD_CAPACITY})))
        with pytest.raises(ValueError, match="no process id"):
            await publisher.publish(added(metadata("w0", pid=0)))
        with pytest.raises(RuntimeError, match="already entered"):
            async with publisher:
                pass


async def test_a_publisher_can_be_entered_again_after_leaving(discovery: LocalDiscovery):
    publisher: LocalPublisher = discovery.publisher
    for uid in ("first", "second"):
        async with publisher:
            await publisher.publish(added(metadata(uid)))
            async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
                assert await next_event(events) == added(metadata(uid))


async def test_dropping_an_unknown_worker_is_harmless(discovery: LocalDiscovery):
    async with discovery.publisher as publisher:
        await publisher.publish(dropped(metadata("nobody")))
        await publisher.publish(added(metadata("w1")))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert await next_event(events) == added(metadata("w1"))


async def test_many_subscribers_converge_on_every_change(discovery: LocalDiscovery):
    workers = {f"w{i}": metadata(f"w{i}") for i in range(10)}

    async def follow(events, view: dict, until: Callable[[dict], bool]) -> None:
        # a subscriber may see a burst as its net change; applied in order, it must converge
        while not until(view):
            event = await next_event(events)
            if event.type == "worker-dropped":
                assert event.metadata.uid in view
                del view[event.metadata.uid]
            else:
                assert (event.type == "worker-added") == (event.metadata.uid not in view)
                view[event.metadata.uid] = event.metadata

    async with contextlib.AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(contextlib.aclosing(aiter(discovery.subscriber)))
            for _ in range(5)
        ]
        views: list[dict] = [{} for _ in streams]
        publisher = await stack.enter_async_context(discovery.publisher)
        for worker in workers.values():
            await publisher.publish(added(worker))
        pairs = list(zip(streams, views, strict=True))
        await asyncio.gather(*(follow(s, v, workers.__eq__) for s, v in pairs))
        for worker in workers.values():
            await publisher.publish(dropped(worker))
        await asyncio.gather(*(follow(s, v, lambda v: not v) for s, v in pairs))


async def test_changes_arrive_through_notifications_not_the_safety_rescan(namespace: str):
    discovery = LocalDiscovery(namespace, poll_interval=3600)
    async with discovery.publisher as publisher:
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            await publisher.publish(added(metadata("w1")))
            assert await next_event(events) == added(metadata("w1"))
            await publisher.publish(dropped(metadata("w1")))
            assert await next_event(events) == dropped(metadata("w1"))


async def test_the_safety_rescan_catches_a_change_nobody_announced(namespace: str):
    discovery = LocalDiscovery(namespace, poll_interval=0.05)
    async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
        waiting = asyncio.ensure_future(anext(events))
        silent = await Attachment.attach(Paths.of(namespace))
        try:
            async with silent.locked() as table:  # written without touching the notify folder
                table.put(metadata("w1"), start_time(os.getpid()))
            async with asyncio.timeout(10):
                assert await waiting == added(metadata("w1"))
        finally:
            await silent.detach()
