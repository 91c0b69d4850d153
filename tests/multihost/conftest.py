"""Hosts for the multi-host tests: network namespaces joined by a bridge.

``hosts`` gives two worker hosts, ``alpha`` (198.18.0.1) and ``beta`` (198.18.0.2), and a
``caller`` host (198.18.0.3), each a namespace whose ``eth0`` is plugged into a bridge
that lives in a fourth namespace; nothing is created in the root namespace and every
namespace is deleted after the test. Each host runs its programs through
``ip netns exec``: :func:`worker_host` a hybrid pool (tests.support.lan_host) and
:func:`caller_host` a durable pool driven by requests (tests.support.lan_caller), both
with LanDiscovery pinned to the host's address. Without root or ``ip`` these tests skip.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest

from tests.support import netns
from wool_discovery_lan import ENVIRONMENT_VARIABLE

TTL = 3
"""The TTL of the worker hosts' records: a host that stops answering is dropped after it."""


@pytest.fixture(scope="session")
def namespaces_available() -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def hosts(namespaces_available: None) -> Iterator[netns.Network]:
    with netns.network("alpha", "beta", "caller") as network:
        yield network
    names = [network.switch.name, *(h.namespace.name for h in network.hosts.values())]
    left = set(names) & set(netns.namespaces(netns.RUN))
    assert not left, f"namespaces left behind: {sorted(left)}"


@attrs.frozen
class WorkerHost:
    host: netns.Host
    process: netns.Process
    workers: list[dict[str, Any]]

    @property
    def uids(self) -> list[str]:
        return [w["uid"] for w in self.workers]

    @property
    def pids(self) -> set[int]:
        return {w["pid"] for w in self.workers}


def _environment(host: netns.Host) -> dict[str, str]:
    return {ENVIRONMENT_VARIABLE: host.address}


@contextlib.asynccontextmanager
async def worker_host(host: netns.Host, size: int = 2, *tags: str) -> AsyncIterator[WorkerHost]:
    """A hybrid pool of ``size`` workers on ``host``, published with TTL seconds."""
    argv = host.command(
        sys.executable, "-m", "tests.support.lan_host", host.address, str(size), "--ttl", str(TTL)
    )
    for tag in tags:
        argv += ["--tag", tag]
    async with netns.spawn(argv, env=_environment(host)) as process:
        ready = await process.line()
        yield WorkerHost(host, process, ready["workers"])


@contextlib.asynccontextmanager
async def caller_host(host: netns.Host, *tags: str) -> AsyncIterator[netns.Process]:
    """A durable pool on ``host`` (see tests.support.lan_caller for its requests)."""
    argv = host.command(
        sys.executable, "-m", "tests.support.lan_caller", "--interface", host.address
    )
    for tag in tags:
        argv += ["--tag", tag]
    async with netns.spawn(argv, env=_environment(host)) as process:
        assert (await process.line())["ready"]
        yield process


def ok(reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` when its request succeeded; a failure that shows the reply otherwise."""
    assert reply.get("ok"), reply
    return reply
