"""`wool worker --discovery lan` and `wool workers --discovery lan`, in a network namespace
whose only interface is loopback (so no multicast reaches a real network)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.helpers import Wool, running
from tests.support import netns
from wool import _plugins

pytestmark = pytest.mark.skipif(
    "lan" not in _plugins.installed(_plugins.DISCOVERY_GROUP),
    reason="wool-discovery-lan is not installed",
)


@pytest.fixture
def loopback() -> Iterator[netns.Namespace]:
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    with netns.loopback_namespace() as namespace:
        yield namespace


async def test_lan_workers_are_seen_and_withdrawn(loopback):
    inside = loopback.command()
    worker_args = ["worker", "--discovery", "lan", "--size", "2", "--tag", "lan-test"]
    worker_args += ["--host", "127.0.0.1"]  # a unix socket cannot be published on a LAN
    async with running(*worker_args, prefix=inside) as command:
        workers = await command.ready()
        async with running(
            "workers", "--discovery", "lan", "--watch", "--json", prefix=inside
        ) as watch:
            added = await _events(watch, "worker-added", len(workers))
            command.send_signal(signal.SIGTERM)
            dropped = await _events(watch, "worker-dropped", len(workers))
            result = await command.finish()
            watch.send_signal(signal.SIGINT)
            assert (await watch.finish()).returncode == 0
    assert result.returncode == 0, result.stderr
    assert "callers on other hosts cannot use them" in result.stderr
    expected = {(w.uid, w.address, w.pid) for w in workers}
    for events, kind in ((added, "worker-added"), (dropped, "worker-dropped")):
        assert {e["type"] for e in events} == {kind}
        assert {
            (e["metadata"]["uid"], e["metadata"]["address"], e["metadata"]["pid"]) for e in events
        } == expected
        assert all(e["metadata"]["tags"] == ["lan-test"] for e in events)


async def _events(watch: Wool, kind: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of type ``kind`` that `wool workers --watch` prints."""
    events: list[dict[str, Any]] = []
    while len(events) < count:
        event = json.loads(await watch.line())
        if event["type"] == kind:
            events.append(event)
    return events
