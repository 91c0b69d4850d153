"""A certificate of the wrong usage is named as such; a readable key file is reported."""

from __future__ import annotations

import asyncio
import logging
import ssl

import grpc
import pytest
import trustme
from cryptography import x509

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, caller, published, recording_worker
from wool._certificates import extended_key_usage


def test_a_certificate_for_neither_tls_role_is_refused(pki):
    with pytest.raises(ValueError, match="neither serverAuth .* nor clientAuth") as info:
        pki.credentials(pki.code_signing)
    assert "codeSigning" in str(info.value)


def test_a_pool_that_spawns_workers_needs_server_auth(pki):
    with pytest.raises(ValueError, match="cannot serve a worker.*not serverAuth"):
        wool.WorkerPool(size=1, credentials=pki.credentials(pki.client_only))


def test_a_mutual_tls_caller_needs_client_auth(pki, discovery):
    with pytest.raises(ValueError, match="not clientAuth") as info:
        wool.WorkerPool(discovery=discovery, credentials=pki.credentials(pki.server_only))
    assert "nested calls" in str(info.value)


def test_one_way_tls_callers_need_no_client_auth(pki):
    credentials = pki.credentials(pki.server_only, mutual=False)
    assert credentials.channel_credentials() is not None
    assert credentials.server_credentials() is not None


async def test_a_worker_certificate_without_server_auth_is_named(pki, discovery, caplog):
    """A worker of another build serving such a certificate: the caller says what is wrong."""
    caplog.set_level(logging.WARNING, logger="wool")
    identity = pki.client_only
    served = grpc.ssl_server_credentials(
        [(identity.key, identity.cert)], root_certificates=pki.ca_pem, require_client_auth=True
    )
    async with asyncio.timeout(BOUND), recording_worker(served) as recording:
        worker = recording.metadata
        async with published(discovery, worker), caller(discovery, pki.credentials(), worker.uid):
            with pytest.raises(wool.NoWorkersAvailable) as info:
                await r.add(1, 2)
    message = str(info.value)
    assert "lacks serverAuth" in message, message
    assert "not signed by the caller's CA" not in message
    assert worker.address in message


@pytest.mark.parametrize(
    ("mode", "warned"), [(0o600, None), (0o640, "its group"), (0o644, "other users")]
)
def test_from_files_warns_when_the_key_is_readable_by_others(pki, tmp_path, caplog, mode, warned):
    files = pki.write(tmp_path)
    files["key"].chmod(mode)
    with caplog.at_level(logging.WARNING, logger="wool"):
        wool.WorkerCredentials.from_files(
            ca_path=files["ca"], key_path=files["key"], cert_path=files["cert"]
        )
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    if warned is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert str(files["key"]) in warning and warned in warning and "chmod 600" in warning


IDENTITIES = (
    "worker",
    "caller",
    "stranger",
    "expired",
    "server_only",
    "client_only",
    "code_signing",
)


def _reference_usage(pem: bytes) -> frozenset[str] | None:
    """The extended key usage as the cryptography library reads it."""
    leaf = x509.load_pem_x509_certificate(pem)
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return frozenset(oid.dotted_string for oid in usage)


@pytest.mark.parametrize("name", IDENTITIES)
def test_wool_reads_the_extended_key_usage_cryptography_reads(pki, name):
    cert = getattr(pki, name).cert
    assert extended_key_usage(cert) == _reference_usage(cert)


def test_a_certificate_without_the_extension_allows_any_usage(pki):
    assert extended_key_usage(pki.ca_pem) is None  # trustme's CA has none
    rsa = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("127.0.0.1")
    pem = rsa.cert_chain_pems[0].bytes()
    assert extended_key_usage(pem) == _reference_usage(pem)


def test_a_truncated_certificate_is_a_value_error(pki):
    der = ssl.PEM_cert_to_DER_cert(
        pki.worker.cert.decode().split("-----END")[0] + "-----END CERTIFICATE-----\n"
    )
    truncated = ssl.DER_cert_to_PEM_cert(der[: len(der) // 2]).encode()
    with pytest.raises(ValueError):
        extended_key_usage(truncated)
