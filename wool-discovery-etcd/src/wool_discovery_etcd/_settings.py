"""The settings of an etcd discovery: endpoints, TLS files, user, lease TTL.

Settings are plain values (paths, not file contents; a password file, not a password),
so a subscriber that carries them into a task carries no secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import attrs

ENDPOINTS_VARIABLE = "WOOL_ETCD_ENDPOINTS"
USERNAME_VARIABLE = "WOOL_ETCD_USERNAME"
PASSWORD_FILE_VARIABLE = "WOOL_ETCD_PASSWORD_FILE"
DEFAULT_ENDPOINT = "http://127.0.0.1:2379"
DEFAULT_NAMESPACE = "default"
DEFAULT_TTL = 5
"""Seconds a worker's lease lives without a keep-alive: a publisher that dies is dropped
by subscribers about this long after its last keep-alive."""
MIN_TTL = 2
"""etcd grants at least this much in practice, and keep-alives go out every TTL/3."""
DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds a first connection keeps trying the endpoints before giving up."""
REQUEST_TIMEOUT = 5.0
"""Seconds one request to one endpoint may take before the next endpoint is tried."""
MAX_NAMESPACE_LENGTH = 100

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_namespace(namespace: object) -> str:
    """``namespace`` if it is 1 to 100 ASCII letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
    if not 0 < len(namespace) <= MAX_NAMESPACE_LENGTH or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"bad namespace {namespace!r}: use 1 to {MAX_NAMESPACE_LENGTH} ASCII letters, "
            "digits, '_', '.' or '-'"
        )
    return namespace


@attrs.frozen
class Endpoint:
    """One etcd member's client URL."""

    scheme: str
    host: str
    port: int

    @property
    def target(self) -> str:
        """The gRPC target, ``host:port`` (``[v6]:port`` for an IPv6 literal)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the member is reached over TLS (``https://``)."""
        return self.scheme == "https"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.target}"


def parse_endpoint(text: str) -> Endpoint:
    """``http://host:port`` or ``https://host:port`` (``host:port`` means ``http://``)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"bad etcd endpoint {text!r}: expected http://HOST:PORT")
    raw = text.strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = f"scheme {parts.scheme!r} is neither http nor https"
    elif parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        problem = "only a scheme, a host and a port are allowed"
    elif not parts.hostname:
        problem = "no host"
    else:
        try:
            port = parts.port
        except ValueError:
            port = None
            problem = "the port is not a number from 1 to 65535"
        if problem is None and port is None:
            problem = "no port (etcd's client port is usually 2379)"
    if problem is not None:
        raise ValueError(f"bad etcd endpoint {text!r}: {problem}")
    assert parts.hostname is not None and parts.port is not None
    return Endpoint(parts.scheme, parts.hostname, parts.port)


def parse_endpoints(value: Iterable[str] | str | None) -> tuple[Endpoint, ...]:
    """Endpoints from a list or a comma-separated string; ``None`` reads
    ``WOOL_ETCD_ENDPOINTS`` and falls back to ``http://127.0.0.1:2379``."""
    if value is None:
        value = os.environ.get(ENDPOINTS_VARIABLE) or DEFAULT_ENDPOINT
    items = value.split(",") if isinstance(value, str) else list(value)
    endpoints = tuple(
        parse_endpoint(item) for item in items if not isinstance(item, str) or item.strip()
    )
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    if len({e.scheme for e in endpoints}) > 1:
        raise ValueError(
            f"etcd endpoints mix http and https ({', '.join(map(str, endpoints))}); "
            "a cluster is reached one way"
        )
    return endpoints


@attrs.frozen
class EtcdSettings:
    """Everything needed to reach a namespace of an etcd cluster; picklable, secret-free."""

    namespace: str = attrs.field(converter=validate_namespace)
    endpoints: tuple[Endpoint, ...]
    ttl: int = DEFAULT_TTL
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __attrs_post_init__(self) -> None:
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or self.ttl < MIN_TTL:
            raise ValueError(
                f"ttl must be a whole number of seconds >= {MIN_TTL}, got {self.ttl!r}"
            )
        if not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, got {self.connect_timeout!r}")
        tls_files = [f for f in (self.ca_file, self.cert_file, self.key_file) if f]
        if tls_files and not self.tls:
            raise ValueError(
                "TLS files are given but the etcd endpoints are http://; use https:// endpoints"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if self.password_file is not None and not self.username:
            raise ValueError("password_file is given without a username")

    @property
    def tls(self) -> bool:
        """Whether the cluster is reached over TLS."""
        return self.endpoints[0].tls

    @property
    def prefix(self) -> bytes:
        """The key prefix of the namespace: every key wool writes starts with it."""
        return f"/wool/{self.namespace}/".encode()

    def describe(self) -> str:
        """The endpoints, for messages."""
        return ", ".join(str(e) for e in self.endpoints)


def settings(
    namespace: str,
    endpoints: Iterable[str] | str | None,
    *,
    ttl: int,
    ca_file: str | os.PathLike[str] | None,
    cert_file: str | os.PathLike[str] | None,
    key_file: str | os.PathLike[str] | None,
    username: str | None,
    password_file: str | os.PathLike[str] | None,
    connect_timeout: float,
) -> EtcdSettings:
    """Settings from user input, with the environment's defaults resolved now."""
    if username is None:
        username = os.environ.get(USERNAME_VARIABLE) or None
    if password_file is None and username:
        password_file = os.environ.get(PASSWORD_FILE_VARIABLE) or None
    return EtcdSettings(
        namespace,
        parse_endpoints(endpoints),
        ttl=ttl,
        ca_file=_path(ca_file),
        cert_file=_path(cert_file),
        key_file=_path(key_file),
        username=username,
        password_file=_path(password_file),
        connect_timeout=float(connect_timeout),
    )


def _path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.path.abspath(os.fspath(value))
