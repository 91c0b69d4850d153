"""Sessions on a local worker's plain session socket: where it is, what it refuses, and
that a caller gone cancels its calls, as on gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import struct
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import wool
import wool.plugins
import wool.testing
from tests.core import routines as r
from wool import _socket_session
from wool._socket_session import SocketStream
from wool._transport import LIMIT_HEADER, PROTOCOL_HEADER
from wool._unix_socket import session_socket
from wool._worker_server import WorkerServer
from wool_lb_roundrobin import RoundRobinLoadBalancer

ROOT = Path(__file__).resolve().parents[2]


async def _add(metadata: wool.WorkerMetadata) -> int:
    """``add(1, 2)`` on the worker of ``metadata``, through a connection of its own."""
    proxy = wool.CallerProxy(wool.testing.StaticSubscriber([metadata]), RoundRobinLoadBalancer())
    connection = wool.CallerConnection(metadata)
    try:
        task = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)
        call = await connection.dispatch(task)
        async with asyncio.timeout(10):
            return await call.result()
    finally:
        await connection.close()


def _sessions_of(metadata: wool.WorkerMetadata) -> Path:
    path = session_socket(Path(metadata.address.removeprefix("unix:")))
    assert path is not None
    return path


async def test_a_local_worker_takes_sessions_on_a_private_socket_beside_its_grpc_one():
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        path = _sessions_of(metadata)
        info = await asyncio.to_thread(path.lstat)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
        assert path.parent == wool.plugins.private_directory()
        assert await _add(metadata) == 3
    finally:
        await worker.stop(0)
    assert not await asyncio.to_thread(path.exists)


async def test_a_worker_without_a_session_socket_is_served_over_grpc():
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        await asyncio.to_thread(os.unlink, _sessions_of(metadata))  # as an older worker
        assert await _add(metadata) == 3
    finally:
        await worker.stop(0)


async def test_a_caller_of_another_protocol_version_is_refused_with_the_reason():
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        stream = SocketStream(_sessions_of(metadata), ((PROTOCOL_HEADER, "0"),))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stream.initial_metadata()
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "protocol version mismatch" in (raised.value.details() or "")
    finally:
        await worker.stop(0)


def _message(kind: bytes, data: bytes) -> bytes:
    return struct.pack("<cI", kind, len(data)) + data


async def _answer(path: Path, data: bytes) -> bytes:
    """What the worker writes back to ``data`` before it closes the connection."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(data)
        writer.write_eof()  # as a caller that has gone: the worker must not wait for more
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_garbage_on_the_session_socket_ends_that_connection_only():
    worker = WorkerServer()
    metadata = await worker.start()
    path = _sessions_of(metadata)
    headers = json.dumps([[PROTOCOL_HEADER, "1"], [LIMIT_HEADER, "1000000"]]).encode()
    try:
        # Not a session at all: the connection is closed, nothing is answered.
        assert await _answer(path, b"GET / HTTP/1.1\r\n\r\n") == b""
        assert await _answer(path, _message(b"H", b"{not json")) == b""
        assert await _answer(path, struct.pack("<cI", b"H", 0xFFFFFFFF)) == b""
        # A session whose message is not wool's: refused with the reason, as on gRPC.
        answer = await _answer(path, _message(b"H", headers) + _message(b"M", b"\xff" * 9))
        kind, size = struct.unpack("<cI", answer[:5])
        assert kind == b"H"
        trailers = answer[5 + size :]
        assert trailers[:1] == b"T"
        status = json.loads(trailers[5:])
        assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "malformed frame" in status["details"]
        assert await _add(metadata) == 3  # the worker serves on
    finally:
        await worker.stop(0)


CALLER = """
import asyncio, sys
import wool, wool.testing
from tests.core import routines as r
from wool_lb_roundrobin import RoundRobinLoadBalancer

async def main():
    metadata = wool.WorkerMetadata("w", sys.argv[1], 1, wool.__version__)
    proxy = wool.CallerProxy(wool.testing.StaticSubscriber([metadata]), RoundRobinLoadBalancer())
    connection = wool.CallerConnection(metadata)
    task = wool.Task(
        routine="wait_forever", callable=r.wait_forever, args=("gone", "began"), kwargs={},
        proxy=proxy,
    )
    await connection.dispatch(task)
    print("accepted", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_caller_killed_mid_call_has_its_call_cancelled_on_the_worker():
    worker = WorkerServer()  # in this process: the routine's events are ours to see
    metadata = await worker.start()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    caller = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CALLER, metadata.address, stdout=subprocess.PIPE, env=env
    )
    try:
        assert caller.stdout is not None
        async with asyncio.timeout(30):
            assert await caller.stdout.readline() == b"accepted\n"
            await r._event("began").wait()
        caller.kill()
        await caller.wait()
        async with asyncio.timeout(10):  # the worker saw the socket close: the call ends
            await r._event("gone").wait()
    finally:
        if caller.returncode is None:
            caller.kill()
            await caller.wait()
        await worker.stop(0)


async def test_a_connection_that_never_sends_its_headers_is_closed(monkeypatch):
    monkeypatch.setattr(_socket_session, "HANDSHAKE_SECONDS", 0.2)
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        reader, writer = await asyncio.open_unix_connection(_sessions_of(metadata))
        try:
            async with asyncio.timeout(10):
                assert await reader.read() == b""  # closed by the worker, not by us
        finally:
            writer.close()
        assert await _add(metadata) == 3
    finally:
        await worker.stop(0)


@pytest.mark.parametrize("seed", range(3))
async def test_random_bytes_on_the_session_socket_never_stop_the_worker(seed):
    """Random messages, some after valid headers, each on a connection of its own."""
    rng = random.Random(seed)
    headers = _message(b"H", json.dumps([[PROTOCOL_HEADER, "1"]]).encode())
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        path = _sessions_of(metadata)
        for _ in range(40):
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
            kind = rng.choice([b"H", b"M", b"E", b"T", b"Z"])
            framed = _message(kind, junk)
            data = rng.choice([junk, framed, headers + junk, headers + framed])
            await _answer(path, data + (_message(b"E", b"") if rng.random() < 0.5 else b""))
        assert await _add(metadata) == 3
    finally:
        await worker.stop(0)
