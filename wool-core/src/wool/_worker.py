"""A worker: the gRPC server that runs routines."""

from __future__ import annotations

import logging
import os

import grpc
import grpc.aio
import shortuuid

from wool._addresses import advertised_host, format_address, is_loopback
from wool._credentials import WorkerCredentials
from wool._hooks import plugin_manager
from wool._metadata import WorkerMetadata
from wool._service import WorkerService
from wool._transport import SERVER_OPTIONS
from wool._version import version

log = logging.getLogger("wool.worker")


class Worker:
    """A gRPC server that runs the tasks callers send it."""

    def __init__(
        self,
        *,
        tags: frozenset[str] = frozenset(),
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: WorkerCredentials | None = None,
        uid: str | None = None,
        advertise: str | None = None,
    ) -> None:
        self.uid = uid or f"worker-{shortuuid.uuid()[:12]}"
        self.tags = tags
        self.host = host
        self.port = port
        self.credentials = credentials
        self.advertise = advertised_host(host, advertise)
        self.metadata: WorkerMetadata | None = None
        self._server: grpc.aio.Server | None = None
        self._service: WorkerService | None = None

    async def start(self) -> WorkerMetadata:
        """Bind and start serving; returns the metadata to publish."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        address = format_address(self.host, self.port)
        if self.credentials is not None:
            port = server.add_secure_port(address, self.credentials.server_credentials())
        else:
            port = server.add_insecure_port(address)
        self.metadata = WorkerMetadata(
            uid=self.uid,
            address=format_address(self.advertise, port),
            pid=os.getpid(),
            version=version,
            tags=self.tags,
            secure=self.credentials is not None,
        )
        self._service = WorkerService(self.metadata, self.credentials)
        server.add_generic_rpc_handlers((self._service.handler(),))
        await server.start()
        self._server = server
        _warn_if_exposed(self.host, self.metadata, self.credentials)
        _call_hook("wool_worker_started", self.metadata)
        return self.metadata

    async def stop(self, grace: float) -> None:
        """Stop taking tasks, give running ones ``grace`` seconds, then cancel them."""
        server, self._server = self._server, None
        if server is None or self._service is None:
            return
        assert self.metadata is not None
        _call_hook("wool_worker_stopping", self.metadata)
        self._service.begin_stop()
        await server.stop(grace)
        await self._service.close()


def _warn_if_exposed(
    host: str, metadata: WorkerMetadata, credentials: WorkerCredentials | None
) -> None:
    """Warn loudly when callers that are not authenticated may reach this worker's port."""
    if is_loopback(host) or (credentials is not None and credentials.mutual):
        return
    how = "without TLS credentials" if credentials is None else "with one-way TLS only"
    log.warning(
        "SECURITY WARNING: worker %s listens on %s (advertised as %s) %s. A wool worker "
        "runs whatever code its callers send: anyone who can reach this port can run "
        "arbitrary code on this machine as this user. Bind to 127.0.0.1, or use mutual "
        "TLS (wool.WorkerCredentials(..., mutual=True)) and a firewall.",
        metadata.uid,
        format_address(host or "0.0.0.0", metadata.port),
        metadata.address,
        how,
    )


def _call_hook(name: str, metadata: WorkerMetadata) -> None:
    try:
        getattr(plugin_manager().hook, name)(worker=metadata)
    except Exception:
        log.exception("%s hook failed", name)
