"""A subscriber whose zeroconf fails logs it and reopens it, with a growing delay."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

from tests.discovery_lan.conftest import metadata
from tests.support import conditions, netns
from tests.support.events import added, following
from wool_discovery_lan import LanDiscovery


@pytest.fixture
def unplugged(namespaces_available: None) -> Iterator[netns.Namespace]:
    """A new namespace whose ``lo`` was never brought up (it has no address yet); the
    test runs inside it."""
    namespace = netns.Namespace(f"{netns.RUN}-unplugged")
    netns.ip("netns", "add", namespace.name)
    try:
        with namespace.entered():
            yield namespace
    finally:
        with contextlib.suppress(RuntimeError):
            netns.ip("netns", "delete", namespace.name)
    assert namespace.name not in netns.namespaces()


async def test_a_subscriber_that_cannot_open_zeroconf_retries_until_it_can(
    unplugged: netns.Namespace, caplog: pytest.LogCaptureFixture
):
    """No interface has an address: opening zeroconf fails. The subscriber logs it and
    tries again 1, 2, 4 ... seconds later; once ``lo`` is up it works."""
    caplog.set_level(logging.WARNING, "wool_discovery_lan._subscriber")
    discovery = LanDiscovery(["lo"])
    async with following(discovery.subscriber) as events:
        await conditions.until(
            lambda: caplog.text.count("reopening zeroconf in") >= 2, "two reopenings", 30, 0.05
        )
        assert "reopening zeroconf in 1 s" in caplog.text
        assert "reopening zeroconf in 2 s" in caplog.text
        assert not events.task.done()
        unplugged.ip("link", "set", "lo", "up")
        unplugged.ip("link", "set", "lo", "multicast", "on")
        unplugged.ip("route", "add", netns.MULTICAST, "dev", "lo")
        async with discovery.publisher as publisher:
            await publisher.publish(added(metadata("w1")))
            assert await events.next(timeout=30) == added(metadata("w1"))
