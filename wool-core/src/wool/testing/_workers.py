"""Workers for plugin tests: real in-process workers, rogue servers, and live pids."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Generator, Iterable

import grpc
import grpc.aio
import shortuuid

from wool._metadata import WorkerMetadata
from wool._version import version as wool_version
from wool._worker_server import WorkerServer


def worker_metadata(
    uid: str | None = None,
    *,
    address: str = "127.0.0.1:50051",
    pid: int | None = None,
    version: str = wool_version,
    tags: Iterable[str] = (),
    secure: bool = False,
) -> WorkerMetadata:
    """A ``WorkerMetadata`` for discovery tests; its ``pid`` is this (live) process by default.

    Discoveries that watch worker processes drop a worker whose pid is dead; use
    :func:`live_process` for a live pid other than this one.
    """
    return WorkerMetadata(
        uid=uid or f"worker-{shortuuid.ShortUUID().uuid()[:12]}",
        address=address,
        pid=os.getpid() if pid is None else pid,
        version=version,
        tags=frozenset(tags),
        secure=secure,
    )


@contextlib.contextmanager
def live_process() -> Generator[subprocess.Popen[bytes], None, None]:
    """A child process that idles until the block ends; its ``pid`` is alive meanwhile.

    ``kill()`` it inside the block to make a worker's process die; it is killed and
    reaped when the block ends either way.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        if process.stdin is not None:
            process.stdin.close()
        process.wait()


class InProcessWorker:
    """A real wool worker (gRPC server and all) on 127.0.0.1, in this process and event loop.

    ``async with InProcessWorker() as metadata:`` starts it and stops it. Routines it
    runs must be importable here; plugin hooks registered in this process apply to it.
    ``concurrency`` bounds the calls it runs at once, as ``WorkerPool(concurrency=...)``.
    """

    def __init__(self, *tags: str, uid: str | None = None, concurrency: int | None = None) -> None:
        self._worker = WorkerServer(
            tags=frozenset(tags), host="127.0.0.1", uid=uid, concurrency=concurrency
        )

    @property
    def uid(self) -> str:
        """The worker's uid (known before it starts)."""
        return self._worker.uid

    @property
    def metadata(self) -> WorkerMetadata:
        """The worker's metadata (once started)."""
        if self._worker.metadata is None:
            raise RuntimeError("the worker has not started")
        return self._worker.metadata

    async def __aenter__(self) -> WorkerMetadata:
        return await self._worker.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._worker.stop(0)


class RogueWorker:
    """A real gRPC server at a worker's address whose every session fails with ``code``.

    Publish its metadata like a worker's to see how a caller or a load balancer copes.
    ``sessions`` counts the sessions callers opened (that is, the dispatch attempts).
    """

    def __init__(self, code: grpc.StatusCode, uid: str | None = None) -> None:
        self.code = code
        self.uid = uid or f"rogue-{code.name.lower()}-{shortuuid.ShortUUID().uuid()[:8]}"
        self.sessions = 0
        self._server: grpc.aio.Server | None = None
        self._metadata: WorkerMetadata | None = None

    @property
    def metadata(self) -> WorkerMetadata:
        """The metadata to publish for it (once started)."""
        if self._metadata is None:
            raise RuntimeError("the rogue worker has not started")
        return self._metadata

    async def __aenter__(self) -> WorkerMetadata:
        async def session(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            self.sessions += 1
            await context.abort(self.code, f"rogue worker {self.uid} says {self.code.name}")
            yield b""  # pragma: no cover - makes this an async generator

        handler = grpc.method_handlers_generic_handler(
            "wool.v1.Worker", {"Session": grpc.stream_stream_rpc_method_handler(session)}
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self._metadata = WorkerMetadata(self.uid, f"127.0.0.1:{port}", os.getpid(), "rogue")
        return self._metadata

    async def __aexit__(self, *exc_info: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(0)
