"""Fixtures for wool-discovery-lan.

Every test that opens zeroconf runs inside a network namespace it creates, whose only
interface is ``lo``: the ``lan`` fixture moves the test's thread there for the test's
duration (the event loop runs in that thread, so every socket the test opens is in the
namespace), and programs the test starts run in it through ``ip netns exec``. No
multicast ever reaches a real interface. Without root or ``ip`` these tests skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import netns
from wool import WorkerMetadata

SCRIPTS = Path(__file__).with_name("_scripts")
SHORT_TTL = 2
"""The TTL of tests that wait for records to expire (the smallest LanDiscovery allows)."""


def metadata(uid: str, **fields: object) -> WorkerMetadata:
    values: dict[str, object] = {
        "uid": uid,
        "address": "127.0.0.1:50051",
        "pid": os.getpid(),
        "version": "0.16.0",
    }
    values.update(fields)
    return WorkerMetadata(**values)  # type: ignore[arg-type]


def socket_count() -> int:
    """The sockets this process has open."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


@pytest.fixture(scope="session")
def namespaces_available() -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def loopback(namespaces_available: None) -> Iterator[netns.Namespace]:
    """A fresh namespace with only ``lo``, deleted after the test."""
    with netns.loopback_namespace() as namespace:
        yield namespace
    assert namespace.name not in netns.namespaces(), f"{namespace.name} was left behind"


@pytest.fixture
def lan(loopback: netns.Namespace) -> Iterator[netns.Namespace]:
    """The test runs inside ``loopback``: every socket it opens is in that namespace."""
    with loopback.entered():
        yield loopback


def python(namespace: netns.Namespace, *argv: str) -> list[str]:
    """``python argv`` run inside ``namespace``."""
    return namespace.command(sys.executable, *argv)


@contextlib.asynccontextmanager
async def publisher_process(
    namespace: netns.Namespace, workers: list[WorkerMetadata], ttl: int, interfaces: str = "lo"
) -> AsyncIterator[netns.Process]:
    """Another process, in ``namespace``, that publishes ``workers`` on ``interfaces``;
    ``process.request("publish", type=..., metadata=...)`` publishes an event there."""
    listed = json.dumps([w.to_dict() for w in workers])
    script = "tests.discovery_lan._scripts.publish"
    argv = python(namespace, "-m", script, interfaces, str(ttl), listed)
    async with netns.spawn(argv) as process:
        assert await process.line(timeout=30) == "published"
        yield process
