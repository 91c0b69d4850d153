"""Helpers of the security tests: real worker processes and hand-made discovery records."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import attrs
import grpc
import grpc.aio

import wool
from tests.support.directory_discovery import DirectoryDiscovery
from wool._supervisor_spawn import WorkerProcess
from wool._transport import (
    LIMIT_HEADER,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    max_message_bytes,
)
from wool.testing import worker_metadata

BOUND = 60.0
"""Every scenario runs under this bound: a handshake problem must fail, never hang."""
WOOL_METADATA = ((PROTOCOL_HEADER, PROTOCOL_VERSION),)
"""What a wool caller sends when it opens a session by hand (its protocol version)."""


@contextlib.asynccontextmanager
async def worker_process(
    credentials: wool.WorkerCredentials | None = None, **kwargs: object
) -> AsyncIterator[wool.WorkerMetadata]:
    """A real worker process (what a pool spawns), stopped on exit."""
    worker = WorkerProcess(credentials=credentials, **kwargs)  # type: ignore[arg-type]
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


@attrs.define
class Recording:
    """What a recording worker received: the raw request messages of its sessions."""

    metadata: wool.WorkerMetadata
    received: list[bytes] = attrs.field(factory=list)
    arrived: asyncio.Event = attrs.field(factory=asyncio.Event)


@contextlib.asynccontextmanager
async def recording_worker(server_credentials: grpc.ServerCredentials) -> AsyncIterator[Recording]:
    """A TLS gRPC server that answers a session like a worker and records what comes in.

    It takes ``grpc.ServerCredentials`` made by hand, so it can serve certificates a wool
    worker refuses to (a worker of another build). It never runs the tasks.
    """
    recording: Recording | None = None

    async def session(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        await context.send_initial_metadata(
            ((PROTOCOL_HEADER, PROTOCOL_VERSION), (LIMIT_HEADER, str(max_message_bytes())))
        )
        assert recording is not None
        async for request in requests:
            recording.received.append(request)
            recording.arrived.set()
        return
        yield b""  # pragma: no cover - makes this an async generator

    handler = grpc.method_handlers_generic_handler(
        "wool.v1.Worker", {"Session": grpc.stream_stream_rpc_method_handler(session)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    await server.start()
    recording = Recording(worker_metadata(address=f"127.0.0.1:{port}", secure=True))
    try:
        yield recording
    finally:
        await server.stop(0)
