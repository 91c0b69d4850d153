"""A worker: the gRPC server that runs routines, and the configuration of a spawned one."""

from __future__ import annotations

import ipaddress
import logging
import os
import pickle
import struct
from pathlib import Path

import attrs
import grpc
import grpc.aio
import shortuuid

from wool import _unix_socket
from wool._credentials import WorkerCredentials
from wool._hooks import plugin_manager
from wool._metadata import WorkerMetadata
from wool._service import WorkerService
from wool._transport import SERVER_OPTIONS
from wool._version import version

log = logging.getLogger("wool.worker")


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Worker:
    """A gRPC server that runs the tasks callers send it.

    Without ``host`` it listens on a unix socket in this user's private directory, so
    that only this user's processes can connect; with ``host`` it listens on TCP, and
    refuses to start on a non-loopback address without mutual TLS unless ``insecure``.
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
        insecure: bool = False,
    ) -> None:
        check_exposure(host, credentials, insecure)
        self.uid = uid or f"worker-{shortuuid.uuid()[:12]}"
        self.tags = tags
        self.host = host
        self.port = port
        self.credentials = credentials
        self.advertise = _advertised_host(host, advertise)
        self.metadata: WorkerMetadata | None = None
        self._server: grpc.aio.Server | None = None
        self._service: WorkerService | None = None
        self._socket: Path | None = None

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
        self._service = WorkerService(self.metadata)
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
        try:
            await server.stop(grace)
            await self._service.close()
        finally:
            if self._socket is not None:
                _unix_socket.remove(self._socket)


WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _advertised_host(host: str | None, advertise: str | None) -> str:
    if host is None:
        if advertise:
            raise ValueError(
                "advertise needs a host: a worker without one listens on a unix socket, "
                "whose address it publishes itself"
            )
        return ""
    if advertise:
        return advertise
    if host in WILDCARDS:
        raise ValueError(
            f"a worker bound to {host or 'all interfaces'!r} needs an advertised address "
            "that callers can reach (advertise='198.18.0.2', or --advertise)"
        )
    return host


def check_exposure(host: str | None, credentials: WorkerCredentials | None, insecure: bool) -> None:
    """Refuse a listener that unauthenticated callers off this host could reach.

    Raises ``ValueError`` for a non-loopback ``host`` without mutual TLS credentials,
    unless ``insecure`` says the user accepts that anyone reaching it can run code.
    """
    if host is None or insecure or _is_loopback(host):
        return
    if credentials is not None and credentials.mutual:
        return
    how = "without TLS credentials" if credentials is None else "with one-way TLS only"
    raise ValueError(
        f"refusing to listen on {host or 'all interfaces'!r} {how}: anyone who can reach "
        "that address could run any code as this user. Use mutual TLS "
        "(wool.WorkerCredentials(..., mutual=True); --ca/--cert/--key), or accept the risk "
        "explicitly with insecure=True (wool worker --insecure)"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _warn_if_exposed(
    host: str | None, metadata: WorkerMetadata, credentials: WorkerCredentials | None
) -> None:
    """Warn loudly when callers that are not authenticated may reach this worker's port."""
    if host is None or _is_loopback(host) or (credentials is not None and credentials.mutual):
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


@attrs.frozen
class WorkerConfig:
    """What a parent tells a worker process it spawns."""

    tags: frozenset[str]
    host: str | None
    credentials: WorkerCredentials | None
    sys_path: tuple[str, ...]
    uid: str
    port: int = 0
    advertise: str | None = None
    log_level: int = logging.WARNING
    insecure: bool = False


def encode_config(config: WorkerConfig) -> bytes:
    """Length-prefixed pickle of ``config``, as the worker reads it from stdin."""
    data = pickle.dumps(config)
    return struct.pack("!Q", len(data)) + data
