"""A small etcd v3 client on grpc.aio: one member at a time, failing over to the next.

It speaks the messages of ``_etcdpb`` over etcd's own method paths; authenticates with a
user and password when given (the token goes in each call's metadata and is renewed
when etcd says it expired); and turns etcd's refusals into this package's errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from wool_discovery_etcd._errors import EtcdAuthError, EtcdUnavailable
from wool_discovery_etcd._etcdpb import etcd_pb2 as pb
from wool_discovery_etcd._settings import REQUEST_TIMEOUT, EtcdSettings

log = logging.getLogger(__name__)

KEEPALIVE_MS = 10_000
"""gRPC pings on idle connections, to notice a member that vanished without closing them;
well above etcd's default minimum of 5 s, which would otherwise end the connection."""
KEEPALIVE_TIMEOUT_MS = 5_000

_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
}
"""Failures of the member rather than of the request: try the next member."""

R = TypeVar("R", bound=Message)

STREAM_END: object = grpc.aio.EOF  # pyright: ignore[reportAttributeAccessIssue] - from Cython
"""What ``read()`` of a gRPC stream returns once the stream ended."""


class Method:
    """One unary etcd method: its path and its response type."""

    def __init__(self, path: str, response: type[Message]) -> None:
        self.path = path
        self.response = response


RANGE = Method("/etcdserverpb.KV/Range", pb.RangeResponse)
PUT = Method("/etcdserverpb.KV/Put", pb.PutResponse)
DELETE_RANGE = Method("/etcdserverpb.KV/DeleteRange", pb.DeleteRangeResponse)
TXN = Method("/etcdserverpb.KV/Txn", pb.TxnResponse)
COMPACT = Method("/etcdserverpb.KV/Compact", pb.CompactionResponse)
LEASE_GRANT = Method("/etcdserverpb.Lease/LeaseGrant", pb.LeaseGrantResponse)
LEASE_REVOKE = Method("/etcdserverpb.Lease/LeaseRevoke", pb.LeaseRevokeResponse)
AUTHENTICATE = Method("/etcdserverpb.Auth/Authenticate", pb.AuthenticateResponse)
WATCH_PATH = "/etcdserverpb.Watch/Watch"
KEEPALIVE_PATH = "/etcdserverpb.Lease/LeaseKeepAlive"


def is_transient(error: grpc.aio.AioRpcError) -> bool:
    """Whether ``error`` is the member's failure (retry elsewhere), not the request's."""
    return error.code() in _TRANSIENT


class EtcdClient:
    """A connection to one member of the cluster at a time; ``close()`` when done."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self._index = 0
        self._channel: grpc.aio.Channel | None = None
        self._credentials: grpc.ChannelCredentials | None = None
        self._token: str | None = None
        self.last_error: str = ""

    @property
    def endpoint(self) -> str:
        """The member in use."""
        return str(self.settings.endpoints[self._index])

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            endpoint = self.settings.endpoints[self._index]
            options = [
                ("grpc.keepalive_time_ms", KEEPALIVE_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ]
            if endpoint.tls:
                self._channel = grpc.aio.secure_channel(
                    endpoint.target, self._tls_credentials(), options=options
                )
            else:
                self._channel = grpc.aio.insecure_channel(endpoint.target, options=options)
        return self._channel

    def _tls_credentials(self) -> grpc.ChannelCredentials:
        if self._credentials is None:
            s = self.settings
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(s.ca_file, "CA certificate"),
                private_key=_read(s.key_file, "client key"),
                certificate_chain=_read(s.cert_file, "client certificate"),
            )
        return self._credentials

    async def failover(self) -> None:
        """Drop the member in use and move to the next one."""
        channel, self._channel = self._channel, None
        self._token = None
        self._index = (self._index + 1) % len(self.settings.endpoints)
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        """Close the connection; the client can connect again afterwards."""
        channel, self._channel = self._channel, None
        self._token = None
        if channel is not None:
            await channel.close()

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata: the auth token, when the cluster wants one."""
        if self.settings.username and self._token is None:
            self._token = await self._authenticate()
        return (("token", self._token),) if self._token else ()

    async def _authenticate(self) -> str:
        s = self.settings
        assert s.username
        password = _read(s.password_file, "password file")
        request = pb.AuthenticateRequest(
            name=s.username, password=password.decode().rstrip("\r\n") if password else ""
        )
        call = self._open().unary_unary(
            AUTHENTICATE.path,
            request_serializer=_serialize,
            response_deserializer=AUTHENTICATE.response.FromString,
        )
        try:
            response = await call(request, timeout=REQUEST_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if is_transient(exc):
                raise
            raise EtcdAuthError(
                f"etcd at {self.endpoint} refused user {s.username!r}: {exc.details()} "
                "(check the username and the password file)"
            ) from None
        return response.token  # type: ignore[attr-defined]

    async def call(self, method: Method, request: Message, timeout: float = REQUEST_TIMEOUT) -> Any:  # noqa: ASYNC109 (a deadline per member tried)
        """``method(request)`` on a member of the cluster; each member is tried once.

        Raises ``EtcdUnavailable`` when no member answers, ``EtcdAuthError`` when etcd
        refuses the credentials, and ``grpc.aio.AioRpcError`` for other refusals.
        """
        errors: list[str] = []
        renewed = False
        attempts = len(self.settings.endpoints)
        while attempts > 0:
            try:
                metadata = await self.metadata()
                stub = self._open().unary_unary(
                    method.path,
                    request_serializer=_serialize,
                    response_deserializer=method.response.FromString,
                )
                return await stub(request, timeout=timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                if token_expired(exc) and not renewed:
                    log.info("the etcd auth token expired; logging in again")
                    self._token, renewed = None, True
                    continue
                if not is_transient(exc):
                    raise_refusal(exc, self)
                    raise
                errors.append(f"{self.endpoint}: {exc.code().name} {exc.details()}")
                attempts -= 1
                await self.failover()
        self.last_error = "; ".join(errors)
        raise EtcdUnavailable(f"no etcd member answered ({self.last_error})")

    def stream(self, path: str, response: type[R]) -> Callable[..., Any]:
        """A bidirectional stream method on the member in use."""
        return self._open().stream_stream(
            path, request_serializer=_serialize, response_deserializer=response.FromString
        )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def token_expired(error: grpc.aio.AioRpcError) -> bool:
    """Whether etcd refused the call's auth token (it expires when unused for a while)."""
    return "invalid auth token" in (error.details() or "") or (
        error.code() == grpc.StatusCode.UNAUTHENTICATED
    )


def raise_refusal(error: grpc.aio.AioRpcError, client: EtcdClient) -> None:
    """Raise ``EtcdAuthError`` when ``error`` is etcd refusing who we are or what we ask."""
    details = error.details() or ""
    user = client.settings.username
    if error.code() == grpc.StatusCode.PERMISSION_DENIED or "permission denied" in details:
        raise EtcdAuthError(
            f"etcd at {client.endpoint} denied {'user ' + repr(user) if user else 'access'} "
            f"to {client.settings.prefix.decode()}: grant read and write on that prefix"
        ) from None
    if "user name is empty" in details or "user name not found" in details:
        raise EtcdAuthError(
            f"etcd at {client.endpoint} requires authentication: give a username and a "
            "password file"
        ) from None


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the etcd {what} {path!r}: {exc.strerror}") from None


async def read_stream(call: Any) -> AsyncIterator[Any]:
    """The responses of a stream call until it ends; its errors propagate."""
    while True:
        response = await call.read()
        if response is STREAM_END:
            return
        yield response


async def sleep_backoff(attempt: int) -> None:
    """Wait before retry ``attempt`` (0.1 s doubling to 2 s)."""
    await asyncio.sleep(min(2.0, 0.1 * 2 ** min(attempt, 5)))


async def call_until(
    client: EtcdClient, method: Method, request: Message, deadline: float | None
) -> Any:
    """``client.call``, retried with back-off until ``deadline`` (loop time; ``None``:
    for ever). Raises ``EtcdUnavailable`` naming every endpoint when it passes."""
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        try:
            return await client.call(method, request)
        except EtcdUnavailable as exc:
            if deadline is not None and loop.time() >= deadline:
                s = client.settings
                raise EtcdUnavailable(
                    f"cannot reach etcd at {s.describe()} (tried for {s.connect_timeout:g} s; "
                    f"{exc}); check that the cluster is up and the endpoints are right"
                ) from None
            log.debug("etcd unavailable, retrying: %s", exc)
        await sleep_backoff(attempt)
        attempt += 1
