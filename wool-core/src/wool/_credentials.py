"""TLS material for workers and the callers that connect to them."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import stat
from collections.abc import Generator
from contextvars import ContextVar
from pathlib import Path

import attrs
import grpc

from wool._certificates import (
    ANY_USAGE,
    CLIENT_AUTH,
    SERVER_AUTH,
    extended_key_usage,
    usage_names,
)

log = logging.getLogger("wool.credentials")

CERTIFICATE_STEPS = "see 'Mutual TLS, step by step' in wool's README"


@attrs.frozen
class WorkerCredentials:
    """PEM material for TLS between callers and workers.

    A worker serves TLS with ``key`` and ``cert`` (its certificate chain, leaf first).
    A caller verifies the worker's certificate against ``ca``. With ``mutual=True`` the
    worker also requires a client certificate signed by ``ca``, and the caller presents
    ``cert``; with ``mutual=False`` the TLS is one-way: it encrypts the traffic and
    authenticates the worker, but any caller that reaches the port may run code on it.

    The same object serves both sides, so a pool can give it to the workers it spawns
    and use it to connect to them. A caller of one-way TLS workers needs only ``ca``
    (``key`` and ``cert`` may be omitted; such credentials cannot serve a worker).

    The private key never leaves the process that holds it: tasks carry no credentials.
    A worker whose routines call other routines (nested calls) connects with its own
    credentials, so under mutual TLS a worker's certificate needs both the
    ``serverAuth`` and the ``clientAuth`` extended key usage.

    ``server_name`` is the name to verify the worker's certificate against instead of
    the host in its address (gRPC's ``ssl_target_name_override``), for certificates
    issued to a DNS name while workers advertise IP addresses.

    Build them with :meth:`from_files` or :meth:`from_pem`, which check the material and
    say which part is wrong; the constructor takes the bytes unchecked.
    """

    ca: bytes = attrs.field(repr=False)
    key: bytes | None = attrs.field(default=None, repr=False)
    cert: bytes | None = attrs.field(default=None, repr=False)
    mutual: bool = True
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        *,
        ca_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str] | None = None,
        cert_path: str | os.PathLike[str] | None = None,
        mutual: bool = True,
        server_name: str | None = None,
    ) -> WorkerCredentials:
        """Read the CA certificate, private key and certificate chain from PEM files.

        Raises ``ValueError`` naming the parameter and the path of a file that cannot be
        read or does not hold what it should; logs a warning when the key file may be read
        by other users.
        """
        labels = {"ca": f"ca_path {str(ca_path)!r}"}
        ca = _read(ca_path, "ca_path")
        key = cert = None
        if key_path is not None:
            key = _read(key_path, "key_path")
            labels["key"] = f"key_path {str(key_path)!r}"
        if cert_path is not None:
            cert = _read(cert_path, "cert_path")
            labels["cert"] = f"cert_path {str(cert_path)!r}"
        credentials = cls._checked(ca, key, cert, mutual, server_name, labels)
        if key_path is not None:
            _warn_if_readable_by_others(key_path)
        return credentials

    @classmethod
    def from_pem(
        cls,
        *,
        ca: bytes,
        key: bytes | None = None,
        cert: bytes | None = None,
        mutual: bool = True,
        server_name: str | None = None,
    ) -> WorkerCredentials:
        """Build credentials from PEM bytes; raises ``ValueError`` naming a bad part."""
        return cls._checked(ca, key, cert, mutual, server_name, {})

    @classmethod
    def _checked(
        cls,
        ca: bytes,
        key: bytes | None,
        cert: bytes | None,
        mutual: bool,
        server_name: str | None,
        labels: dict[str, str],
    ) -> WorkerCredentials:
        ca_label = labels.get("ca", "ca")
        key_label = labels.get("key", "key")
        cert_label = labels.get("cert", "cert")
        _check_certificates(ca, ca_label)
        if (key is None) != (cert is None):
            missing = "cert" if cert is None else "key"
            raise ValueError(f"{missing} is missing: a key and a certificate go together")
        if key is None and mutual:
            raise ValueError(
                "mutual TLS needs a key and a certificate (the client certificate a caller "
                "presents and the server certificate of a worker); only one-way TLS "
                "(mutual=False) works with a CA alone"
            )
        if key is not None and cert is not None:
            _check_key(key, key_label)
            _check_certificates(cert, cert_label)
            _check_pair(key, cert, key_label, cert_label)
            _check_some_tls_usage(cert, cert_label)
        if server_name is not None and not server_name:
            raise ValueError("server_name must be a non-empty host name or None")
        return cls(ca=ca, key=key, cert=cert, mutual=mutual, server_name=server_name)

    @property
    def can_serve(self) -> bool:
        """Whether a worker can serve TLS with these credentials (they hold a key)."""
        return self.key is not None and self.cert is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials for a worker's server port.

        Raises ``ValueError`` when there is no key, or when the certificate's extended key
        usage does not allow serving TLS (callers would refuse it).
        """
        if self.key is None or self.cert is None:
            raise ValueError(
                "these WorkerCredentials hold no key and certificate, so a worker cannot "
                "serve TLS with them (they only let a caller connect to one-way TLS workers)"
            )
        if not _allows(self.cert, SERVER_AUTH):
            raise ValueError(
                "the certificate of these WorkerCredentials cannot serve a worker: its "
                f"extended key usage lists {_usage_names(self.cert)} but not serverAuth, so "
                "callers would refuse it. Issue worker certificates with serverAuth (and "
                f"clientAuth, for nested calls under mutual TLS); {CERTIFICATE_STEPS}"
            )
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca if self.mutual else None,
            require_client_auth=self.mutual,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials for a caller's channel to a worker.

        Raises ``ValueError`` when, under mutual TLS, the certificate's extended key usage
        does not allow presenting it as a client certificate (workers would refuse it).
        """
        if self.mutual:
            if self.cert is not None and not _allows(self.cert, CLIENT_AUTH):
                raise ValueError(
                    "the certificate of these WorkerCredentials cannot be presented to "
                    f"workers under mutual TLS: its extended key usage lists "
                    f"{_usage_names(self.cert)} but not clientAuth, so workers would refuse "
                    "it. Callers present their certificate, and a worker presents its own "
                    "when its routines call other routines (nested calls): issue these "
                    f"certificates with clientAuth too; {CERTIFICATE_STEPS}"
                )
            return grpc.ssl_channel_credentials(
                root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
            )
        return grpc.ssl_channel_credentials(root_certificates=self.ca)

    def channel_options(self) -> list[tuple[str, str | int]]:
        """Extra channel options for TLS: the target name override, if any."""
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []


_serving: ContextVar[WorkerCredentials | None] = ContextVar("wool_serving", default=None)
_on_worker: ContextVar[bool] = ContextVar("wool_on_worker", default=False)


@contextlib.contextmanager
def serving_as(credentials: WorkerCredentials | None) -> Generator[None, None, None]:
    """Within this block, a worker serving with ``credentials`` unpickles what it received.

    Proxies unpickled here make their nested calls with these credentials (see
    :func:`nested_call_credentials`).
    """
    token, on_worker = _serving.set(credentials), _on_worker.set(True)
    try:
        yield
    finally:
        _on_worker.reset(on_worker)
        _serving.reset(token)


def unpickled_on_worker() -> bool:
    """Whether a worker is unpickling what it received here (see :func:`serving_as`)."""
    return _on_worker.get()


def nested_call_credentials(server_name: str | None) -> WorkerCredentials:
    """The credentials a proxy of a TLS pool, unpickled on a worker, connects with.

    They are the worker's own: the caller's key stays with the caller. ``server_name`` is
    the caller's name override for worker certificates (a public setting), used when the
    worker's credentials set none.
    """
    own = _serving.get()
    if own is None:
        raise ValueError(
            "a proxy of a TLS pool can only be unpickled by a worker that serves TLS: "
            "nested calls use the worker's own credentials, and the caller's private key "
            "never travels with its tasks"
        )
    if server_name and not own.server_name:
        return attrs.evolve(own, server_name=server_name)
    return own


def _read(path: str | os.PathLike[str], name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {name} {str(path)!r}: {exc.strerror or exc}") from exc


def _warn_if_readable_by_others(path: str | os.PathLike[str]) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "SECURITY WARNING: the private key %s can be read by %s (mode %s): anyone who "
            "reads it can pose as this worker or caller. Restrict it: chmod 600 %s",
            str(path),
            "other users" if mode & stat.S_IROTH else "its group",
            oct(stat.S_IMODE(mode)),
            str(path),
        )


def _text(data: bytes, label: str) -> str:
    if not isinstance(data, bytes):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
        raise TypeError(f"{label} must be PEM bytes, got {type(data).__name__}")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{label} is not PEM data (it is not ASCII text)") from None


def _check_certificates(data: bytes, label: str) -> None:
    """``data`` must hold one or more PEM certificates that OpenSSL can parse."""
    text = _text(data, label)
    if "-----BEGIN CERTIFICATE-----" not in text:
        hint = " (it holds a private key)" if "PRIVATE KEY-----" in text else ""
        raise ValueError(
            f"{label} is not a PEM certificate: no '-----BEGIN CERTIFICATE-----' block{hint}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except ssl.SSLError as exc:
        raise ValueError(f"{label} holds a certificate that cannot be parsed: {exc}") from None


def _allows(cert: bytes, purpose: str) -> bool:
    usages = extended_key_usage(cert)
    return usages is None or purpose in usages or ANY_USAGE in usages


def _usage_names(cert: bytes) -> str:
    return usage_names(extended_key_usage(cert))


def _check_some_tls_usage(cert: bytes, label: str) -> None:
    """The certificate must allow serving TLS or presenting it as a client certificate."""
    try:
        server = _allows(cert, SERVER_AUTH)
        client = _allows(cert, CLIENT_AUTH)
    except ValueError as exc:
        raise ValueError(f"{label} holds a certificate that cannot be parsed: {exc}") from None
    if not (server or client):
        raise ValueError(
            f"{label} cannot be used for TLS: its extended key usage lists "
            f"{_usage_names(cert)}, neither serverAuth (to serve a worker) nor clientAuth "
            f"(to connect to workers under mutual TLS); {CERTIFICATE_STEPS}"
        )


def _check_key(data: bytes, label: str) -> None:
    text = _text(data, label)
    if "PRIVATE KEY-----" not in text:
        hint = " (it holds a certificate)" if "CERTIFICATE-----" in text else ""
        raise ValueError(f"{label} is not a PEM private key{hint}")
    if "ENCRYPTED" in text:
        raise ValueError(f"{label} is encrypted; wool needs an unencrypted private key")


def _check_pair(key: bytes, cert: bytes, key_label: str, cert_label: str) -> None:
    """The key must parse and belong to the first certificate of the chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with _memory_file(cert) as cert_file, _memory_file(key) as key_file:
        if cert_file is None or key_file is None:
            return  # no anonymous in-memory files here: gRPC reports it at bind time
        try:
            context.load_cert_chain(cert_file, key_file, password=_no_password)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc) or "values mismatch" in str(exc):
                raise ValueError(
                    f"{key_label} is not the private key of the certificate in {cert_label}"
                ) from None
            raise ValueError(f"{key_label} cannot be loaded as a private key: {exc}") from None


def _no_password() -> bytes:
    raise ValueError("the private key is encrypted; wool needs an unencrypted private key")


@contextlib.contextmanager
def _memory_file(data: bytes) -> Generator[str | None, None, None]:
    """A path to ``data`` that never touches a disk (Linux memfd), or None elsewhere."""
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        yield None
        return
    fd = create("wool-credentials", getattr(os, "MFD_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
