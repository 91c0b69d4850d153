"""TLS material for workers and the callers that connect to them."""

from __future__ import annotations

from pathlib import Path

import attrs
import grpc


@attrs.frozen
class WorkerCredentials:
    """PEM material for TLS between callers and workers.

    ``mutual=True`` makes workers require and verify a client certificate signed by
    ``ca``, and callers present ``cert``; ``mutual=False`` is one-way TLS (callers verify
    the worker only). The same object serves both sides.
    """

    ca: bytes = attrs.field(repr=False)
    key: bytes = attrs.field(repr=False)
    cert: bytes = attrs.field(repr=False)
    mutual: bool = True

    @classmethod
    def from_files(
        cls,
        *,
        ca_path: str | Path,
        key_path: str | Path,
        cert_path: str | Path,
        mutual: bool = True,
    ) -> WorkerCredentials:
        """Read the CA certificate, private key and certificate chain from PEM files."""
        return cls.from_pem(
            ca=_read(ca_path, "ca_path"),
            key=_read(key_path, "key_path"),
            cert=_read(cert_path, "cert_path"),
            mutual=mutual,
        )

    @classmethod
    def from_pem(
        cls, *, ca: bytes, key: bytes, cert: bytes, mutual: bool = True
    ) -> WorkerCredentials:
        """Build credentials from PEM bytes."""
        for name, value in (("ca", ca), ("key", key), ("cert", cert)):
            if b"-----BEGIN " not in value:
                raise ValueError(f"{name} is not PEM data (no '-----BEGIN' marker)")
        return cls(ca=ca, key=key, cert=cert, mutual=mutual)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials for a worker's server port."""
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
        """Extra channel options for TLS (none yet)."""
        return []


def _read(path: str | Path, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {name} {str(path)!r}: {exc.strerror}") from exc
