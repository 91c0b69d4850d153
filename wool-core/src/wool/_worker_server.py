"""A worker: the gRPC server that runs routines."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import grpc
import grpc.aio
import shortuuid

from wool import _socket_session, _unix_socket
from wool._addresses import (
    advertised_host,
    check_exposure,
    format_address,
    is_loopback,
    tls_of,
)
from wool._credentials import WorkerCredentials
from wool._hooks import plugin_manager
from wool._metadata import WorkerMetadata
from wool._transport import SERVER_OPTIONS
from wool._version import version
from wool._worker_load import WorkerLoad
from wool._worker_service import WorkerService

log = logging.getLogger("wool.worker")


class WorkerServer:
    """A gRPC server that runs the tasks callers send it.

    ``concurrency`` bounds the calls it runs at once (None: unbounded); a call beyond it
    is refused as transient, so the caller tries another worker or waits.
    Without ``host`` it listens on a unix socket in this user's private directory, so
    that only this user's processes can connect; with ``host`` it listens on TCP, and
    refuses a non-loopback address without mutual TLS unless ``insecure``.
    """

    def __init__(
        self,
        *,
        tags: frozenset[str] = frozenset(),
        host: str | None = None,
        port: int = 0,
        credentials: WorkerCredentials | None = None,
        uid: str | None = None,
        advertise: str | None = None,
        concurrency: int | None = None,
        insecure: bool = False,
    ) -> None:
        self.load = WorkerLoad(concurrency)  # checks concurrency
        self.uid = uid or f"worker-{shortuuid.ShortUUID().uuid()[:12]}"
        self.tags = tags
        self.host = host
        self.port = port
        self.credentials = credentials
        self.advertise = advertised_host(host, advertise)
        check_exposure(host, tls_of(credentials), insecure)
        self.metadata: WorkerMetadata | None = None
        self._server: grpc.aio.Server | None = None
        self._service: WorkerService | None = None
        self._socket: Path | None = None
        self._sessions: _socket_session.SessionServer | None = None

    async def start(self) -> WorkerMetadata:
        """Bind and start serving; returns the metadata to publish."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        if self.host is None:
            self._socket = _unix_socket.socket_path(self.uid)
            _unix_socket.remove_stale(self._socket.parent)
            address = f"{_unix_socket.PREFIX}{self._socket}"
        else:
            address = format_address(self.host, self.port)
        if self.credentials is not None:
            port = server.add_secure_port(address, self.credentials.server_credentials())
        else:
            port = server.add_insecure_port(address)
        advertised = address if self.host is None else format_address(self.advertise, port)
        self.metadata = WorkerMetadata(
            uid=self.uid,
            address=advertised,
            pid=os.getpid(),
            version=version,
            tags=self.tags,
            secure=self.credentials is not None,
        )
        self._service = WorkerService(self.metadata, self.credentials, self.load)
        server.add_generic_rpc_handlers((self._service.handler(),))
        await server.start()
        self._server = server
        if self._socket is not None and self.credentials is None:
            path = _unix_socket.session_socket(self._socket)
            if path is not None:
                sessions = _socket_session.SessionServer(path, self._service.session)
                await sessions.start()
                self._sessions = sessions
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
        sessions, self._sessions = self._sessions, None
        try:
            if sessions is not None:
                await asyncio.gather(server.stop(grace), sessions.stop(grace))
            else:
                await server.stop(grace)
            await self._service.close()
        finally:
            if self._socket is not None:
                _unix_socket.remove_worker(self._socket)


def _warn_if_exposed(
    host: str | None, metadata: WorkerMetadata, credentials: WorkerCredentials | None
) -> None:
    """Warn loudly when callers that are not authenticated may reach this worker's port."""
    if host is None or is_loopback(host) or (credentials is not None and credentials.mutual):
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
