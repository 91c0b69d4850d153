"""Helpers of the security tests: real worker processes and hand-made discovery records."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import wool
from tests.support.directory_discovery import DirectoryDiscovery
from wool._spawn import LocalWorker

BOUND = 60.0
"""Every scenario runs under this bound: a handshake problem must fail, never hang."""


@contextlib.asynccontextmanager
async def worker_process(
    credentials: wool.WorkerCredentials | None = None, **kwargs: object
) -> AsyncIterator[wool.WorkerMetadata]:
    """A real worker process (what a pool spawns), stopped on exit."""
    worker = LocalWorker(credentials=credentials, **kwargs)  # type: ignore[arg-type]
    metadata = await worker.start()
    try:
        yield metadata
    finally:
        await worker.stop(grace=0)


@contextlib.asynccontextmanager
async def published(
    discovery: DirectoryDiscovery, *records: wool.WorkerMetadata
) -> AsyncIterator[None]:
    """Publish ``records`` (true or not) through ``discovery``; withdraw them on exit."""
    async with discovery.publisher as publisher:
        for record in records:
            await publisher.publish(wool.DiscoveryEvent("worker-added", record))
        yield


@contextlib.asynccontextmanager
async def caller(
    discovery: DirectoryDiscovery,
    credentials: wool.WorkerCredentials | None,
    *uids: str,
) -> AsyncIterator[wool.WorkerPool]:
    """A durable pool over ``discovery`` that has seen the workers ``uids`` it may use."""
    async with wool.WorkerPool(discovery=discovery, credentials=credentials) as pool:
        assert pool.proxy is not None
        await pool.proxy.wait_for(uids, timeout=BOUND)
        yield pool
