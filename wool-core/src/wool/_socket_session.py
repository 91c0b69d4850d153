"""A session carried on a plain unix socket instead of a gRPC stream.

A local worker without TLS listens on a unix socket in this user's private directory
for gRPC, and on a second one beside it (``wool._unix_socket.session_socket``) for
sessions only: the same frames, without HTTP/2 and gRPC's threads, which cost more than
wool's own work on a call (README, Performance). Each message is ``kind`` (1 byte), its length (4
bytes, little-endian), then its bytes:

- ``H``: headers, both ways (the caller's request metadata; the worker's answer);
- ``M``: one message of the session, both ways;
- ``E``: the caller is done writing;
- ``T``: the worker's trailers and status (the last message), ``{"code", "details",
  "metadata"}`` as JSON.

Either end closing the socket otherwise ends the session at once: the caller gone
cancels the worker's side, as a cancelled gRPC call does; the worker gone fails the
caller's reads with ``UNAVAILABLE``. The two ends mimic the part of gRPC's stream and
servicer context that sessions use, so the session code is the same on both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from wool._transport import FRAME_OVERHEAD, max_message_bytes

Headers = Sequence[tuple[str, str]]
_HEAD = struct.Struct("<cI")
HEADERS, MESSAGE, END, TRAILERS = b"H", b"M", b"E", b"T"
HANDSHAKE_SECONDS = 10.0
"""How long a new connection may take to send its headers (as gRPC's handshake)."""
BUFFER = 1 << 20
"""How much a reader buffers before it stops reading the socket (asyncio's default,
64 KiB, would pause and resume reading many times within one large message)."""
HIGH_WATER = 4 * 1024 * 1024
"""Bytes a writer may leave in its socket's buffer before it waits for them to drain."""
EOF: object = grpc.aio.EOF  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType]


async def _read(reader: asyncio.StreamReader, limit: int) -> tuple[bytes, bytes]:
    kind, size = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    if size > limit:
        raise _TooLarge(size, limit)
    return kind, await reader.readexactly(size) if size else b""


def _write(writer: asyncio.StreamWriter, kind: bytes, data: Any) -> None:
    view = memoryview(data)
    writer.write(_HEAD.pack(kind, view.nbytes))
    if view.nbytes:
        writer.write(view)


async def _write_message(writer: asyncio.StreamWriter, kind: bytes, data: Any) -> None:
    transport = writer.transport
    if transport.is_closing():
        raise ConnectionResetError("the session's socket is closed")
    _write(writer, kind, data)
    if transport.get_write_buffer_size() > HIGH_WATER:
        await writer.drain()


def _headers(data: bytes) -> tuple[tuple[str, str], ...]:
    return tuple((str(key), str(value)) for key, value in json.loads(data))


class _TooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes is over the limit of {limit} bytes")


# --- the caller's end -----------------------------------------------------------------------


def _error(code: grpc.StatusCode, details: str, trailers: Headers = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=details
    )


class SocketStream:
    """The caller's end: what a session uses of a gRPC stream-stream call."""

    def __init__(self, path: Path, metadata: Headers) -> None:
        self._path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._failure: grpc.aio.AioRpcError | None = None
        self._trailers: tuple[tuple[str, str], ...] = ()
        self._opened = asyncio.get_running_loop().create_task(self._open(metadata))

    async def _open(self, metadata: Headers) -> tuple[tuple[str, str], ...]:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                self._path, limit=BUFFER
            )
            _write(self._writer, HEADERS, json.dumps(list(metadata)).encode())
            kind, data = await _read(self._reader, max_message_bytes())
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise self._fail(
                grpc.StatusCode.UNAVAILABLE, f"failed to connect to {self._path}: {exc}"
            ) from None
        if kind == TRAILERS:  # refused before it answered
            raise self._ended(data)
        return _headers(data)

    def _fail(self, code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
        if self._failure is None:
            self._failure = _error(code, details, self._trailers)
            self._close()
        return self._failure

    def _ended(self, data: bytes) -> grpc.aio.AioRpcError:
        status = json.loads(data)
        self._trailers = tuple((str(k), str(v)) for k, v in status.get("metadata", ()))
        code = grpc.StatusCode.UNKNOWN
        for candidate in grpc.StatusCode:
            if candidate.value[0] == status.get("code"):
                code = candidate
        return self._fail(code, str(status.get("details", "")))

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    async def initial_metadata(self) -> tuple[tuple[str, str], ...]:
        return await asyncio.shield(self._opened)

    async def write(self, data: Any) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._opened.done():
            await asyncio.shield(self._opened)
        assert self._writer is not None
        await _write_message(self._writer, MESSAGE, data)

    async def done_writing(self) -> None:
        if self._failure is None and self._writer is not None:
            _write(self._writer, END, b"")

    async def read(self) -> Any:
        """The next message, or ``EOF`` once the worker ended the session with OK."""
        if not self._opened.done():
            await asyncio.shield(self._opened)
        if self._failure is not None:
            if self._failure.code() == grpc.StatusCode.OK:
                return EOF
            raise self._failure
        assert self._reader is not None
        try:
            kind, data = await _read(self._reader, max_message_bytes() + FRAME_OVERHEAD)
        except (OSError, asyncio.IncompleteReadError):
            raise self._fail(
                grpc.StatusCode.UNAVAILABLE, "the worker closed the session's socket"
            ) from None
        except _TooLarge as exc:
            raise self._fail(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
        if kind == MESSAGE:
            return data
        error = self._ended(data) if kind == TRAILERS else None
        if error is None:
            raise self._fail(grpc.StatusCode.INTERNAL, f"unknown message kind {kind!r}")
        if error.code() == grpc.StatusCode.OK:
            return EOF
        raise error

    async def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailers

    def cancel(self) -> bool:
        if self._failure is None:
            self._fail(grpc.StatusCode.CANCELLED, "the session was cancelled")
        self._opened.cancel()
        return True


# --- the worker's end -----------------------------------------------------------------------


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class SocketContext:
    """The worker's end: what a session uses of a gRPC servicer context."""

    def __init__(self, writer: asyncio.StreamWriter, metadata: Headers) -> None:
        self._writer = writer
        self._metadata = tuple(metadata)
        self.trailers: Headers = ()

    def invocation_metadata(self) -> Headers:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Abort(code, details)

    async def send_initial_metadata(self, metadata: Headers) -> None:
        _write(self._writer, HEADERS, json.dumps(list(metadata)).encode())

    async def write(self, data: Any) -> None:
        await _write_message(self._writer, MESSAGE, data)

    def set_trailing_metadata(self, metadata: Headers) -> None:
        self.trailers = metadata


Handler = Callable[[AsyncIterator[bytes], Any], Awaitable[None]]


class SessionServer:
    """Serves sessions on a unix socket with ``handler`` (``WorkerService.session``)."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=BUFFER)
        os.chmod(self.path, 0o600)

    async def stop(self, grace: float) -> None:
        """Take no more sessions; give the open ones ``grace`` seconds, then cancel them."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._session(reader, writer)
        finally:
            self._sessions.discard(task)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = max_message_bytes() + FRAME_OVERHEAD
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                kind, data = await _read(reader, limit)
            metadata = _headers(data) if kind == HEADERS else None
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, _TooLarge):
            return
        if metadata is None:
            return
        context = SocketContext(writer, metadata)
        incoming = _Incoming(reader, limit)
        handler = asyncio.ensure_future(self._handler(incoming.messages(), context))
        # The caller went away: cancel its session, as gRPC cancels a cancelled call.
        incoming.gone.add_done_callback(lambda _: handler.cancel())
        code, details = grpc.StatusCode.OK, ""
        try:
            await handler
        except _Abort as abort:
            code, details = abort.code, abort.details
        except asyncio.CancelledError:
            if not incoming.gone.done():
                raise  # this server is stopping
            return
        except Exception as exc:
            code, details = grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}"
        finally:
            incoming.close()
        status = {"code": code.value[0], "details": details, "metadata": list(context.trailers)}
        with contextlib.suppress(OSError):
            _write(writer, TRAILERS, json.dumps(status).encode())
            await writer.drain()


class _Incoming:
    """The caller's messages; ``gone`` is set when its socket closes before the end."""

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self._limit = limit
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watcher: asyncio.Task[None] | None = None

    async def messages(self) -> AsyncIterator[bytes]:
        """The messages until the caller is done writing."""
        try:
            while True:
                kind, data = await _read(self._reader, self._limit)
                if kind == MESSAGE:
                    yield data
                elif kind == END:
                    # From now on the socket closing still means the caller is gone.
                    self._watcher = asyncio.get_running_loop().create_task(self._watch())
                    return
                else:
                    raise ValueError(f"unknown message kind {kind!r}")
        except (OSError, ValueError, asyncio.IncompleteReadError, _TooLarge):
            self._vanished()

    async def _watch(self) -> None:
        with contextlib.suppress(OSError):
            while await self._reader.read(1 << 16):
                pass
        self._vanished()

    def _vanished(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
