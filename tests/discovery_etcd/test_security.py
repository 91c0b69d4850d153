"""TLS to etcd (CA and client certificate) and etcd's user/password authentication."""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.discovery_etcd._etcd import EtcdServer, running
from tests.discovery_etcd.conftest import refused, round_trip
from tests.support.events import added, following
from wool.testing import worker_metadata as metadata
from wool_discovery_etcd import EtcdAuthError, EtcdDiscovery, EtcdUnavailable


class Certificates:
    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert, self.server_key = folder / "server.pem", folder / "server-key.pem"
        server.private_key_pem.write_to_path(str(self.server_key))
        for blob in server.cert_chain_pems:
            blob.write_to_path(str(self.server_cert), append=True)
        client = self.ca.issue_cert("wool-client")
        self.client_cert, self.client_key = folder / "client.pem", folder / "client-key.pem"
        client.private_key_pem.write_to_path(str(self.client_key))
        for blob in client.cert_chain_pems:
            blob.write_to_path(str(self.client_cert), append=True)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


@pytest.fixture
def tls_etcd(tmp_path: Path, certificates: Certificates) -> Iterator[EtcdServer]:
    """An etcd member that serves clients over TLS and wants their certificate."""
    c = certificates
    server = EtcdServer(
        tmp_path / "tls-etcd",
        scheme="https",
        extra=[
            f"--cert-file={c.server_cert}",
            f"--key-file={c.server_key}",
            f"--trusted-ca-file={c.ca_file}",
            "--client-cert-auth",
        ],
    )
    server.ctl_options = [
        f"--cacert={c.ca_file}",
        f"--cert={c.client_cert}",
        f"--key={c.client_key}",
    ]
    with running(server):
        yield server


async def test_mutual_tls_to_etcd(tls_etcd: EtcdServer, certificates: Certificates):
    c = certificates
    d = EtcdDiscovery(
        "tls",
        endpoints=[tls_etcd.endpoint],
        ca_file=c.ca_file,
        cert_file=c.client_cert,
        key_file=c.client_key,
    )
    await round_trip(d)


async def test_without_a_client_certificate_the_cluster_is_unreachable(
    tls_etcd: EtcdServer, certificates: Certificates
):
    d = EtcdDiscovery(
        "tls", endpoints=[tls_etcd.endpoint], ca_file=certificates.ca_file, connect_timeout=1
    )
    await refused(d, EtcdUnavailable, "cannot reach etcd at https://127.0.0.1")


async def test_a_member_signed_by_another_ca_is_not_trusted(
    tls_etcd: EtcdServer, certificates: Certificates, tmp_path: Path
):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    c = certificates
    d = EtcdDiscovery(
        "tls",
        endpoints=[tls_etcd.endpoint],
        ca_file=other,
        cert_file=c.client_cert,
        key_file=c.client_key,
        connect_timeout=1,
    )
    await refused(d, EtcdUnavailable, "cannot reach etcd")


async def test_an_unreadable_ca_file_is_named(tmp_path: Path):
    d = EtcdDiscovery("tls", endpoints="https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="cannot read the etcd CA certificate .*missing.pem"):
        async with d.publisher:
            pass


ROOT_PASSWORD = "root-secret"
ALICE_PASSWORD = "alice-secret"


TOKEN_TTL = 1
"""Seconds etcd keeps an unused auth token (``--auth-token-ttl``; etcd's default is 300)."""


@pytest.fixture
def auth_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """A member with authentication on: ``alice`` may read and write ``/wool/``, ``bob``
    nothing; tokens expire after TOKEN_TTL seconds unused."""
    with running(EtcdServer(tmp_path / "auth", extra=[f"--auth-token-ttl={TOKEN_TTL}"])) as server:
        enable_users(server)
        yield server


def enable_users(own_etcd: EtcdServer) -> None:
    ctl = own_etcd.etcdctl
    ctl("user", "add", "root", f"--new-user-password={ROOT_PASSWORD}")
    ctl("role", "add", "wool")
    ctl("role", "grant-permission", "wool", "--prefix=true", "readwrite", "/wool/")
    ctl("user", "add", "alice", f"--new-user-password={ALICE_PASSWORD}")
    ctl("user", "grant-role", "alice", "wool")
    ctl("user", "add", "bob", "--new-user-password=bob-secret")
    ctl("auth", "enable")
    own_etcd.ctl_options = [f"--user=root:{ROOT_PASSWORD}"]


def password_file(folder: Path, password: str) -> Path:
    path = folder / "password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


async def test_a_user_with_a_password_file_publishes_and_subscribes(
    auth_etcd: EtcdServer, tmp_path: Path
):
    d = EtcdDiscovery(
        "auth",
        endpoints=[auth_etcd.endpoint],
        username="alice",
        password_file=password_file(tmp_path, ALICE_PASSWORD),
    )
    assert ALICE_PASSWORD.encode() not in pickle.dumps(d.subscriber)
    await round_trip(d)
    assert auth_etcd.etcdctl("get", "--prefix", "--keys-only", "/wool/auth/workers/") == ""


async def test_a_wrong_password_is_a_clear_error(auth_etcd: EtcdServer, tmp_path: Path):
    d = EtcdDiscovery(
        "auth",
        endpoints=[auth_etcd.endpoint],
        username="alice",
        password_file=password_file(tmp_path, "wrong"),
    )
    await refused(d, EtcdAuthError, "refused user 'alice'.*check the username")


async def test_no_credentials_for_a_cluster_that_wants_them(auth_etcd: EtcdServer):
    d = EtcdDiscovery("auth", endpoints=[auth_etcd.endpoint])
    await refused(d, EtcdAuthError, "requires authentication")


async def test_a_user_without_permission_on_the_namespace(auth_etcd: EtcdServer, tmp_path: Path):
    d = EtcdDiscovery(
        "auth",
        endpoints=[auth_etcd.endpoint],
        username="bob",
        password_file=password_file(tmp_path, "bob-secret"),
    )
    await refused(d, EtcdAuthError, "denied user 'bob' .*/wool/auth/")


async def test_an_expired_auth_token_is_renewed(
    auth_etcd: EtcdServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="wool_discovery_etcd")
    d = EtcdDiscovery(
        "auth",
        endpoints=[auth_etcd.endpoint],
        ttl=60,  # keep-alives every 20 s: the token goes unused
        username="alice",
        password_file=password_file(tmp_path, ALICE_PASSWORD),
    )
    first, second = metadata(), metadata()
    async with d.publisher as publisher:
        await publisher.publish(added(first))
        # the fault under test is a token left unused longer than its TTL: wait that long
        await asyncio.sleep(TOKEN_TTL + 1.5)
        await publisher.publish(added(second))
        async with following(d.subscriber) as events:
            assert await events.take(2) == [added(first), added(second)]
    assert any("token expired" in r.getMessage() for r in caplog.records)
