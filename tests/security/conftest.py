"""Certificates made at test time (never committed, so they never expire in the repo)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import attrs
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import wool
from tests.support.directory_discovery import DirectoryDiscovery


@attrs.frozen
class Identity:
    """A private key and the certificate chain (leaf first) that goes with it."""

    key: bytes
    cert: bytes


def _identity(leaf: trustme.LeafCert) -> Identity:
    return Identity(
        key=leaf.private_key_pem.bytes(),
        cert=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
    )


def _expired(ca: trustme.CA) -> Identity:
    """A certificate for 127.0.0.1, signed by ``ca``, whose validity ended yesterday."""
    return _issue(
        ca,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        valid_days=(-30, -1),
        name="expired wool worker",
    )


def _with_usages(ca: trustme.CA, *usages: x509.ObjectIdentifier) -> Identity:
    """A certificate for 127.0.0.1, signed by ``ca``, whose extended key usage is ``usages``."""
    return _issue(ca, list(usages), valid_days=(-1, 30), name="wool test")


def _issue(
    ca: trustme.CA, usages: list[x509.ObjectIdentifier], valid_days: tuple[int, int], name: str
) -> Identity:
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=valid_days[0]))
        .not_valid_after(now + datetime.timedelta(days=valid_days[1]))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return Identity(
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert=cert.public_bytes(serialization.Encoding.PEM),
    )


class PKI:
    """Two unrelated CAs and the identities the tests hand to workers and callers.

    ``worker`` is valid for 127.0.0.1 and localhost and usable as a server and a client
    certificate, so (like in a pool) one identity serves both sides.
    """

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.worker = _identity(self.ca.issue_cert("127.0.0.1", "localhost"))
        self.caller = _identity(self.ca.issue_cert("wool-caller.test"))
        self.dns_only = _identity(self.ca.issue_cert("wool-worker.test"))
        self.stranger = _identity(self.other_ca.issue_cert("127.0.0.1"))
        self.expired = _expired(self.ca)
        self.server_only = _with_usages(self.ca, ExtendedKeyUsageOID.SERVER_AUTH)
        self.client_only = _with_usages(self.ca, ExtendedKeyUsageOID.CLIENT_AUTH)
        self.code_signing = _with_usages(self.ca, ExtendedKeyUsageOID.CODE_SIGNING)

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def credentials(
        self,
        identity: Identity | None = None,
        *,
        ca: trustme.CA | None = None,
        mutual: bool = True,
        server_name: str | None = None,
    ) -> wool.WorkerCredentials:
        """Credentials trusting ``ca`` (ours by default) holding ``identity`` (``worker``)."""
        identity = identity or self.worker
        return wool.WorkerCredentials.from_pem(
            ca=(ca or self.ca).cert_pem.bytes(),
            key=identity.key,
            cert=identity.cert,
            mutual=mutual,
            server_name=server_name,
        )

    def ca_only(self) -> wool.WorkerCredentials:
        """What a caller of one-way TLS workers needs: the CA, no key."""
        return wool.WorkerCredentials.from_pem(ca=self.ca_pem, mutual=False)

    def write(self, directory: Path, identity: Identity | None = None) -> dict[str, Path]:
        """PEM files for ``identity``: ``ca``, ``key``, ``cert`` (and ``other_ca``)."""
        identity = identity or self.worker
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "ca": directory / "ca.pem",
            "other_ca": directory / "other-ca.pem",
            "key": directory / "key.pem",
            "cert": directory / "cert.pem",
        }
        files["ca"].write_bytes(self.ca_pem)
        files["other_ca"].write_bytes(self.other_ca.cert_pem.bytes())
        files["key"].write_bytes(identity.key)
        files["key"].chmod(0o600)
        files["cert"].write_bytes(identity.cert)
        return files


@pytest.fixture(scope="session")
def pki() -> PKI:
    return PKI()


@pytest.fixture
def discovery(tmp_path: Path) -> DirectoryDiscovery:
    """A discovery of our own: tests publish the worker records they want, true or not."""
    return DirectoryDiscovery(tmp_path / "workers")
