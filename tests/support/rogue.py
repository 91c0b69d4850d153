"""A real gRPC server that speaks wool's Session method but always fails it."""

from __future__ import annotations

import os

import grpc
import grpc.aio

from wool import WorkerMetadata


class RogueWorker:
    """Answers every Session with ``code``; published like a worker to test balancers."""

    def __init__(self, code: grpc.StatusCode, uid: str) -> None:
        self.code = code
        self.uid = uid
        self.server: grpc.aio.Server | None = None
        self.sessions = 0

    async def __aenter__(self) -> WorkerMetadata:
        async def session(requests, context):
            self.sessions += 1
            await context.abort(self.code, f"rogue worker says {self.code.name}")
            yield  # pragma: no cover - makes this an async generator

        handler = grpc.method_handlers_generic_handler(
            "wool.v1.Worker",
            {"Session": grpc.stream_stream_rpc_method_handler(session)},
        )
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((handler,))
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return WorkerMetadata(self.uid, f"127.0.0.1:{port}", os.getpid(), "rogue")

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        await self.server.stop(0)
