"""WorkerCredentials: built from files or PEM bytes, and clear about what is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import wool


def test_from_files_and_from_pem_build_the_same_credentials(pki, tmp_path):
    files = pki.write(tmp_path)
    for mutual in (True, False):
        from_files = wool.WorkerCredentials.from_files(
            ca_path=files["ca"], key_path=str(files["key"]), cert_path=files["cert"], mutual=mutual
        )
        from_pem = wool.WorkerCredentials.from_pem(
            ca=pki.ca_pem, key=pki.worker.key, cert=pki.worker.cert, mutual=mutual
        )
        assert from_files == from_pem
        assert from_files.mutual is mutual
        assert from_files.can_serve


def test_mutual_is_the_default(pki):
    assert pki.credentials().mutual is True
    assert wool.WorkerCredentials.from_pem(
        ca=pki.ca_pem, key=pki.worker.key, cert=pki.worker.cert
    ).mutual


def test_repr_never_shows_key_material(pki):
    text = repr(pki.credentials()) + str(pki.credentials())
    assert "PRIVATE" not in text and "BEGIN" not in text


def test_credentials_survive_pickling_to_worker_processes(pki):
    credentials = pki.credentials(server_name="localhost")
    assert pickle.loads(pickle.dumps(credentials)) == credentials


def test_both_sides_get_grpc_credentials(pki):
    credentials = pki.credentials()
    assert credentials.server_credentials() is not None
    assert credentials.channel_credentials() is not None
    assert pki.credentials(mutual=False).channel_credentials() is not None


def test_server_name_overrides_the_tls_target_name(pki):
    assert pki.credentials().channel_options() == []
    assert pki.credentials(server_name="wool-worker.test").channel_options() == [
        ("grpc.ssl_target_name_override", "wool-worker.test")
    ]


def test_one_way_caller_needs_only_the_ca(pki, tmp_path):
    files = pki.write(tmp_path)
    credentials = wool.WorkerCredentials.from_files(ca_path=files["ca"], mutual=False)
    assert not credentials.can_serve
    assert credentials.channel_credentials() is not None
    with pytest.raises(ValueError, match="cannot serve TLS"):
        credentials.server_credentials()


def test_mutual_tls_needs_a_key_and_certificate(pki):
    with pytest.raises(ValueError, match="mutual TLS needs a key and a certificate"):
        wool.WorkerCredentials.from_pem(ca=pki.ca_pem, mutual=True)
    with pytest.raises(ValueError, match="cert is missing"):
        wool.WorkerCredentials.from_pem(ca=pki.ca_pem, key=pki.worker.key, mutual=False)


@pytest.mark.parametrize("parameter", ["ca_path", "key_path", "cert_path"])
def test_unreadable_file_error_names_parameter_and_path(pki, tmp_path, parameter):
    files = pki.write(tmp_path)
    paths = {"ca_path": files["ca"], "key_path": files["key"], "cert_path": files["cert"]}
    missing = tmp_path / "nowhere" / "missing.pem"
    paths[parameter] = missing
    with pytest.raises(ValueError) as info:
        wool.WorkerCredentials.from_files(**paths)
    message = str(info.value)
    assert parameter in message and str(missing) in message
    assert "No such file or directory" in message


def test_directory_instead_of_file_is_named(pki, tmp_path):
    files = pki.write(tmp_path)
    with pytest.raises(ValueError, match=r"cannot read ca_path .*Is a directory"):
        wool.WorkerCredentials.from_files(
            ca_path=tmp_path, key_path=files["key"], cert_path=files["cert"]
        )


@pytest.mark.parametrize(
    ("parameter", "content", "problem"),
    [
        ("ca_path", b"just some text\n", "is not a PEM certificate"),
        ("ca_path", b"\x00\xff\xfe binary", "is not PEM data"),
        ("cert_path", b"", "is not a PEM certificate"),
        ("key_path", b"hello", "is not a PEM private key"),
        (
            "ca_path",
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
            "cannot be parsed",
        ),
    ],
)
def test_non_pem_file_error_names_parameter_and_path(pki, tmp_path, parameter, content, problem):
    files = pki.write(tmp_path)
    paths = {"ca_path": files["ca"], "key_path": files["key"], "cert_path": files["cert"]}
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    paths[parameter] = bad
    with pytest.raises(ValueError) as info:
        wool.WorkerCredentials.from_files(**paths)
    message = str(info.value)
    assert f"{parameter} {str(bad)!r}" in message
    assert problem in message


def test_key_and_certificate_swapped_are_named(pki, tmp_path):
    files = pki.write(tmp_path)
    with pytest.raises(ValueError) as info:
        wool.WorkerCredentials.from_files(
            ca_path=files["ca"], key_path=files["cert"], cert_path=files["key"]
        )
    assert f"key_path {str(files['cert'])!r} is not a PEM private key (it holds a certificate)" in (
        str(info.value)
    )


def test_key_of_another_certificate_is_named(pki, tmp_path):
    files = pki.write(tmp_path)
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(pki.caller.key)
    with pytest.raises(ValueError) as info:
        wool.WorkerCredentials.from_files(
            ca_path=files["ca"], key_path=other_key, cert_path=files["cert"]
        )
    message = str(info.value)
    assert f"key_path {str(other_key)!r} is not the private key of the certificate" in message
    assert str(files["cert"]) in message


def test_from_pem_names_the_bad_argument(pki):
    with pytest.raises(ValueError, match="^ca is not a PEM certificate"):
        wool.WorkerCredentials.from_pem(ca=b"nope", key=pki.worker.key, cert=pki.worker.cert)
    with pytest.raises(ValueError, match="^key is not the private key of the certificate in cert"):
        wool.WorkerCredentials.from_pem(ca=pki.ca_pem, key=pki.caller.key, cert=pki.worker.cert)
    with pytest.raises(TypeError, match="cert must be PEM bytes, got str"):
        wool.WorkerCredentials.from_pem(
            ca=pki.ca_pem,
            key=pki.worker.key,
            cert=pki.worker.cert.decode(),  # type: ignore[arg-type]
        )


def test_encrypted_key_is_refused_clearly(pki, tmp_path: Path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.worker.key, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="key is encrypted"):
        wool.WorkerCredentials.from_pem(ca=pki.ca_pem, key=encrypted, cert=pki.worker.cert)


def test_a_pool_that_spawns_workers_needs_credentials_that_can_serve(pki):
    caller_only = wool.WorkerCredentials.from_pem(ca=pki.ca_pem, mutual=False)
    with pytest.raises(ValueError, match="cannot serve them"):
        wool.WorkerPool(size=1, credentials=caller_only)
    wool.WorkerPool(discovery="local", credentials=caller_only)  # durable: connects only
