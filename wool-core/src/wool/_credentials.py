"""TLS material for workers and the callers that connect to them."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import attrs
import grpc


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
        read or does not hold what it should.
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
        return cls._checked(ca, key, cert, mutual, server_name, labels)

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
        if server_name is not None and not server_name:
            raise ValueError("server_name must be a non-empty host name or None")
        return cls(ca=ca, key=key, cert=cert, mutual=mutual, server_name=server_name)

    @property
    def can_serve(self) -> bool:
        """Whether a worker can serve TLS with these credentials (they hold a key)."""
        return self.key is not None and self.cert is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials for a worker's server port."""
        if self.key is None or self.cert is None:
            raise ValueError(
                "these WorkerCredentials hold no key and certificate, so a worker cannot "
                "serve TLS with them (they only let a caller connect to one-way TLS workers)"
            )
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca if self.mutual else None,
            require_client_auth=self.mutual,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials for a caller's channel to a worker."""
        if self.mutual:
            return grpc.ssl_channel_credentials(
                root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
            )
        return grpc.ssl_channel_credentials(root_certificates=self.ca)

    def channel_options(self) -> list[tuple[str, str | int]]:
        """Extra channel options for TLS: the target name override, if any."""
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []


def _read(path: str | os.PathLike[str], name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {name} {str(path)!r}: {exc.strerror or exc}") from exc


def _text(data: bytes, label: str) -> str:
    if not isinstance(data, bytes):
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
def _memory_file(data: bytes) -> Iterator[str | None]:
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
