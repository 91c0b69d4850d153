"""A reference below gRPC: wool's call protocol on a plain asyncio unix socket.

Not a baseline wool is held to, but what the transport itself costs: the same exchanges
as bench/raw_grpc.py's ``Session`` and ``Pull``, framed by hand (a 4-byte length, then
the bytes) on one unix socket per server, with no HTTP/2, no gRPC core threads and no
flow control beyond the socket's own. The server runs in its own process
(``python -m bench.raw_socket PATH``), two of them, as wool runs two workers.

Requests: ``s`` + a pickled call, answered ``a`` (taken) then the pickled result, as
wool's workers answer ``accepted`` before the result; ``p`` + a pickled generator call,
answered with its first item; ``n``, answered with the next item (``b""`` ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench.raw_grpc import (
    ACCEPTED,
    END,
    PROTOCOL,
    START_TIMEOUT,
    encode_call,
    end_server,
    spawn_server,
)

_LENGTH = struct.Struct("<I")


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return await reader.readexactly(size)


def _write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(_LENGTH.pack(len(data)) + data)


# --- server ---------------------------------------------------------------------------------


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    generator: Any = None
    try:
        while True:
            request = await _read_frame(reader)
            kind, body = request[:1], request[1:]
            if kind == b"s":
                fn, args, kwargs = pickle.loads(body)
                _write_frame(writer, ACCEPTED)
                _write_frame(writer, pickle.dumps(await fn(*args, **kwargs), PROTOCOL))
                continue
            if kind == b"p":
                if generator is not None:
                    await generator.aclose()  # the client stopped pulling the last one
                fn, args, kwargs = pickle.loads(body)
                generator = fn(*args, **kwargs)
            try:
                item = await generator.__anext__()
            except StopAsyncIteration:
                _write_frame(writer, END)
                continue
            _write_frame(writer, pickle.dumps(item, PROTOCOL))
    except asyncio.IncompleteReadError:
        pass  # the client closed the connection
    finally:
        if generator is not None:
            await generator.aclose()
        writer.close()


async def serve(path: str) -> None:
    server = await asyncio.start_unix_server(_connection, path)
    print("ready", flush=True)
    # Serve until the parent closes our stdin (or dies, which closes it too).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    server.close()


# --- client ---------------------------------------------------------------------------------


class SocketServer:
    """One server process this process started and stops, and one connection to it."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self._directory = tempfile.TemporaryDirectory(prefix="wool-bench-sock-")
        self.path = os.path.join(self._directory.name, "raw.sock")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        self.process = await spawn_server("bench.raw_socket", self.path)
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await self.process.stdout.readline()
            self.reader, self.writer = await asyncio.open_unix_connection(self.path)
        except BaseException:
            await self.stop()
            raise

    async def exchange(self, request: bytes, replies: int) -> bytes:
        """Send ``request``, read ``replies`` frames, return the last."""
        assert self.reader is not None and self.writer is not None
        _write_frame(self.writer, request)
        reply = b""
        for _ in range(replies):
            reply = await _read_frame(self.reader)
        return reply

    async def stop(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        process, self.process = self.process, None
        if process is not None:
            await end_server(process)
        self._directory.cleanup()


class SocketCluster:
    """Two plain-socket servers; calls alternate between them."""

    def __init__(self, size: int = 2) -> None:
        self.servers = [SocketServer() for _ in range(size)]
        self._next = 0

    async def __aenter__(self) -> SocketCluster:
        try:
            await asyncio.gather(*(s.start() for s in self.servers))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers), return_exceptions=True)

    def pick(self) -> SocketServer:
        server = self.servers[self._next]
        self._next = (self._next + 1) % len(self.servers)
        return server

    async def session(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One call answered as wool's workers answer: taken, then its result."""
        return pickle.loads(await self.pick().exchange(b"s" + encode_call(fn, *args), 2))

    async def pull(self, fn: Callable[..., Any], *args: Any) -> AsyncIterator[Any]:
        """The items of generator ``fn(*args)``, one request per item."""
        server = self.pick()
        reply = await server.exchange(b"p" + encode_call(fn, *args), 1)
        while reply != END:
            yield pickle.loads(reply)
            reply = await server.exchange(b"n", 1)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
