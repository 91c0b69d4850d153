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
import collections
import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio

from wool._transport import FRAME_OVERHEAD, max_message_bytes

Headers = Sequence[tuple[str, str]]
_HEAD = struct.Struct("<cI")
HEADERS, MESSAGE, END, TRAILERS = b"H", b"M", b"E", b"T"
HANDSHAKE_SECONDS = 10.0
"""How long a new connection may take to send its headers (as gRPC's handshake)."""
SCRATCH = 256 * 1024
"""Where small messages are read (many at a time); a larger one gets a buffer of its own."""
HIGH_WATER = 4 * 1024 * 1024
"""Bytes a writer may leave in its socket's buffer before it waits for them to drain,
and bytes read but not taken before a reader stops reading the socket."""
EOF: object = grpc.aio.EOF  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType]


class _Link(asyncio.BufferedProtocol):
    """One end of a session socket: messages read as they arrive, straight into their
    own buffer when large (one copy, by the kernel), and written with flow control."""

    def __init__(self, limit: int, connected: Callable[[_Link], None] | None = None) -> None:
        self._limit = limit
        self._connected = connected
        self.transport: asyncio.Transport | None = None
        self._scratch = bytearray(SCRATCH)
        self._filled = 0
        self._large: bytearray | None = None
        self._large_kind = b""
        self._large_got = 0
        self._frames: collections.deque[tuple[bytes, bytes | bytearray]] = collections.deque()
        self._queued = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None
        """Why no more messages will come (the peer closed, or sent something bad)."""
        self._writable: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Set once the peer will send nothing more (it closed its end, or the socket)."""

    # -- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's, but have the same methods.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        if self._connected is not None:
            self._connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._large is not None:
            return memoryview(self._large)[self._large_got :]
        return memoryview(self._scratch)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._large is not None:
            self._large_got += nbytes
            if self._large_got == len(self._large):
                self._push(self._large_kind, self._large)
                self._large = None
            return
        self._filled += nbytes
        self._parse()

    def eof_received(self) -> bool:
        self._end(asyncio.IncompleteReadError(b"", None))
        if not self.closed.done():
            self.closed.set_result(None)
        return True  # half-closed: this end may still write (the worker its trailers)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or asyncio.IncompleteReadError(b"", None))
        if not self.closed.done():
            self.closed.set_result(None)
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_exception(ConnectionResetError("the session's socket closed"))

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- reading

    def _parse(self) -> None:
        scratch, start, filled = self._scratch, 0, self._filled
        while filled - start >= _HEAD.size:
            kind, size = _HEAD.unpack_from(scratch, start)
            if size > self._limit:
                self._end(_TooLarge(size, self._limit))
                if self.transport is not None:
                    self.transport.abort()
                return
            body = start + _HEAD.size
            if filled - body >= size:
                self._push(kind, bytes(scratch[body : body + size]))
                start = body + size
            elif _HEAD.size + size > len(scratch):  # the rest goes straight to its buffer
                large = bytearray(size)
                large[: filled - body] = scratch[body:filled]
                self._large, self._large_kind, self._large_got = large, kind, filled - body
                start = filled
                break
            else:
                break
        if start:
            scratch[: filled - start] = scratch[start:filled]
            self._filled = filled - start

    def _push(self, kind: bytes, data: bytes | bytearray) -> None:
        self._frames.append((kind, data))
        self._queued += len(data)
        if self._queued > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _end(self, why: BaseException) -> None:
        if self._ended is None:
            self._ended = why
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> tuple[bytes, bytes | bytearray]:
        """The next message as ``(kind, data)``; raises why none will come."""
        while not self._frames:
            if self._ended is not None:
                raise self._ended
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        kind, data = self._frames.popleft()
        self._queued -= len(data)
        if self._reading_paused and self._queued <= HIGH_WATER // 2 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return kind, data

    # -- writing

    def write(self, kind: bytes, data: Any) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the session's socket is closed")
        view = memoryview(data)
        transport.write(_HEAD.pack(kind, view.nbytes))
        if view.nbytes:
            transport.write(view)

    async def write_message(self, kind: bytes, data: Any) -> None:
        """Write, then wait while the socket's buffer is over its high-water mark."""
        self.write(kind, data)
        if self._writable is not None:
            await self._writable

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _headers(data: bytes | bytearray) -> tuple[tuple[str, str], ...]:
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
        self._link: _Link | None = None
        self._failure: grpc.aio.AioRpcError | None = None
        self._trailers: tuple[tuple[str, str], ...] = ()
        self._opened = asyncio.get_running_loop().create_task(self._open(metadata))

    async def _open(self, metadata: Headers) -> tuple[tuple[str, str], ...]:
        limit = max_message_bytes() + FRAME_OVERHEAD
        try:
            _, self._link = await asyncio.get_running_loop().create_unix_connection(
                lambda: _Link(limit), str(self._path)
            )
            self._link.write(HEADERS, json.dumps(list(metadata)).encode())
            kind, data = await self._link.read()
        except (OSError, asyncio.IncompleteReadError, _TooLarge) as exc:
            raise self._fail(
                grpc.StatusCode.UNAVAILABLE, f"failed to connect to {self._path}: {exc!r}"
            ) from None
        if kind == TRAILERS:  # refused before it answered
            raise self._ended(data)
        return _headers(data)

    def _fail(self, code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
        if self._failure is None:
            self._failure = _error(code, details, self._trailers)
            if self._link is not None:
                self._link.close()
        return self._failure

    def _ended(self, data: bytes | bytearray) -> grpc.aio.AioRpcError:
        status = json.loads(data)
        self._trailers = tuple((str(k), str(v)) for k, v in status.get("metadata", ()))
        code = grpc.StatusCode.UNKNOWN
        for candidate in grpc.StatusCode:
            if candidate.value[0] == status.get("code"):
                code = candidate
        return self._fail(code, str(status.get("details", "")))

    async def initial_metadata(self) -> tuple[tuple[str, str], ...]:
        return await asyncio.shield(self._opened)

    async def write(self, data: Any) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._opened.done():
            await asyncio.shield(self._opened)
        assert self._link is not None
        await self._link.write_message(MESSAGE, data)

    async def done_writing(self) -> None:
        if self._failure is None and self._link is not None:
            with contextlib.suppress(ConnectionResetError):
                self._link.write(END, b"")

    async def read(self) -> Any:
        """The next message, or ``EOF`` once the worker ended the session with OK."""
        if not self._opened.done():
            await asyncio.shield(self._opened)
        if self._failure is not None:
            if self._failure.code() == grpc.StatusCode.OK:
                return EOF
            raise self._failure
        assert self._link is not None
        try:
            kind, data = await self._link.read()
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

    def __init__(self, link: _Link, metadata: Headers) -> None:
        self._link = link
        self._metadata = tuple(metadata)
        self.trailers: Headers = ()

    def invocation_metadata(self) -> Headers:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Abort(code, details)

    async def send_initial_metadata(self, metadata: Headers) -> None:
        self._link.write(HEADERS, json.dumps(list(metadata)).encode())

    async def write(self, data: Any) -> None:
        await self._link.write_message(MESSAGE, data)

    def set_trailing_metadata(self, metadata: Headers) -> None:
        self.trailers = metadata


Handler = Callable[[AsyncIterator[bytes | bytearray], Any], Awaitable[None]]


class SessionServer:
    """Serves sessions on a unix socket with ``handler`` (``WorkerService.session``)."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        limit = max_message_bytes() + FRAME_OVERHEAD
        self._server = await asyncio.get_running_loop().create_unix_server(
            lambda: _Link(limit, self._accepted), str(self.path)
        )
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

    def _accepted(self, link: _Link) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(link))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _serve(self, link: _Link) -> None:
        try:
            await self._session(link)
        finally:
            link.close()

    async def _session(self, link: _Link) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                kind, data = await link.read()
            metadata = _headers(data) if kind == HEADERS else None
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, _TooLarge):
            return
        if metadata is None:
            return
        context = SocketContext(link, metadata)
        incoming = _Incoming(link)
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
        with contextlib.suppress(ConnectionResetError):
            await link.write_message(TRAILERS, json.dumps(status).encode())


class _Incoming:
    """The caller's messages; ``gone`` is set when its socket closes before the end."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watcher: asyncio.Task[None] | None = None

    async def messages(self) -> AsyncIterator[bytes | bytearray]:
        """The messages until the caller is done writing."""
        try:
            while True:
                kind, data = await self._link.read()
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
        await self._link.closed
        self._vanished()

    def _vanished(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
