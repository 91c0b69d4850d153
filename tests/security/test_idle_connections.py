"""Idle connections and idle streams must not lock callers out of a worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.security import routines as r
from tests.security.helpers import BOUND, WOOL_METADATA, caller, published, worker_process
from wool._transport import SERVER_STREAMS_PER_CONNECTION, SESSION_METHOD

IDLE_CONNECTIONS = 1_100
"""More than the usual soft limit of 1,024 open files."""
SERVED_WITHIN = 5.0
"""A legitimate call under the flood must finish within this many seconds."""
DEFAULT_SOFT_LIMIT = 1_024


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def soft_open_file_limit(limit: int) -> Iterator[None]:
    """This process's soft open-file limit set to ``limit`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.asynccontextmanager
async def idle_connections(address: str, count: int) -> AsyncIterator[list[asyncio.StreamWriter]]:
    """``count`` TCP connections to ``address`` that never send a byte; closed on exit."""
    host, port = address.rsplit(":", 1)
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(count):
            _, writer = await asyncio.open_connection(host, int(port))
            writers.append(writer)
        yield writers
    finally:
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


@pytest.fixture
def enough_descriptors() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 512:
        pytest.skip(f"the hard open-file limit ({hard}) is too low to hold the idle connections")


async def test_idle_connections_do_not_lock_out_a_legitimate_caller(
    pki, discovery, enough_descriptors
):
    async with asyncio.timeout(BOUND * 2):
        # The worker starts with the soft limit most systems give a process.
        with soft_open_file_limit(DEFAULT_SOFT_LIMIT):
            context = worker_process(pki.credentials(), host="127.0.0.1")  # TCP under test
            worker = await context.__aenter__()
        try:
            async with idle_connections(worker.address, IDLE_CONNECTIONS):
                # The caller's connection queues behind the idle ones: it is served only
                # if the worker could accept them all.
                async with (
                    published(discovery, worker),
                    caller(discovery, pki.credentials(), worker.uid),
                ):
                    async with asyncio.timeout(SERVED_WITHIN):
                        assert await r.add(40, 2) == 42
                assert open_files(worker.pid) > IDLE_CONNECTIONS  # it really holds them
        finally:
            await context.__aexit__(None, None, None)


async def test_a_connection_that_never_handshakes_is_closed(pki):
    async with (
        asyncio.timeout(BOUND),
        worker_process(pki.credentials(), host="127.0.0.1") as worker,
    ):
        host, port = worker.address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            # gRPC's default would hold it for 120 s; the worker closes it much sooner.
            assert await reader.read() == b""
        finally:
            writer.close()
            await writer.wait_closed()


def test_a_worker_process_raises_its_soft_open_file_limit(tmp_path: Path):
    """What the worker does at start, observed in a child that starts with 1,024."""
    import subprocess
    import sys

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= DEFAULT_SOFT_LIMIT:
        pytest.skip(f"the hard open-file limit ({hard}) leaves nothing to raise")
    code = (
        "import resource; from wool._worker_open_files import raise_open_file_limit; "
        "raise_open_file_limit(); print(*resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    with soft_open_file_limit(DEFAULT_SOFT_LIMIT):
        output = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    soft, hard_seen = map(int, output.split())
    assert soft == hard_seen > DEFAULT_SOFT_LIMIT


async def test_one_connection_holds_at_most_the_stream_cap_open_at_once():
    """Sessions over ``SERVER_STREAMS_PER_CONNECTION`` on one connection wait: the worker
    answers the one over the cap only once another one has ended."""
    cap = SERVER_STREAMS_PER_CONNECTION
    async with asyncio.timeout(BOUND * 2), worker_process() as worker:
        async with grpc.aio.insecure_channel(worker.address) as channel:
            session = channel.stream_stream(
                SESSION_METHOD, request_serializer=bytes, response_deserializer=bytes
            )
            calls = [session(metadata=WOOL_METADATA) for _ in range(cap + 1)]
            answered = [asyncio.ensure_future(c.initial_metadata()) for c in calls]
            try:
                await asyncio.gather(*answered[:cap])
                over = answered[cap]
                # Never answered while the others stay open (it would be within
                # milliseconds without the cap)...
                done, _ = await asyncio.wait([over], timeout=1.0)
                assert not done
                # ...and answered as soon as one of them ends.
                calls[0].cancel()
                await over
            finally:
                for call in calls:
                    call.cancel()
                for future in answered:
                    future.cancel()
                await asyncio.gather(*answered, return_exceptions=True)
