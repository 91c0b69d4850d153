"""A TLS client that wool did not write, ``openssl s_client``, against real workers.

``-brief`` prints ``CONNECTION ESTABLISHED`` and ``Verification: OK`` after a handshake
whose certificate chain verified; ``-verify_return_error`` makes a failed verification
abort the handshake (non-zero exit). ``-alpn h2`` asks for HTTP/2 as gRPC expects.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import attrs
import pytest

from tests.security.helpers import worker_process

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

OPENSSL_SECONDS = 30.0


@attrs.frozen
class Result:
    code: int
    output: str

    @property
    def established(self) -> bool:
        return "CONNECTION ESTABLISHED" in self.output

    @property
    def verified(self) -> bool:
        return "Verification: OK" in self.output


async def s_client(address: str, *options: str) -> Result:
    """Run ``openssl s_client`` against ``address`` (``host:port`` or ``unix:/path``) with
    stdin closed; bounded in time."""
    target = ("-unix", address[5:]) if address.startswith("unix:") else ("-connect", address)
    process = await asyncio.create_subprocess_exec(
        "openssl",
        "s_client",
        *target,
        "-brief",
        "-alpn",
        "h2",
        "-verify_return_error",
        *options,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(OPENSSL_SECONDS):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, output.decode(errors="replace"))


@pytest.mark.parametrize("mutual", [False, True], ids=["one-way", "mutual"])
async def test_openssl_verifies_the_worker_certificate_chain(pki, tmp_path, mutual):
    files = pki.write(tmp_path)
    client = ("-cert", str(files["cert"]), "-key", str(files["key"]))
    async with worker_process(pki.credentials(mutual=mutual)) as worker:
        result = await s_client(
            worker.address, "-CAfile", str(files["ca"]), "-verify_ip", "127.0.0.1", *client
        )
    assert result.code == 0, result.output
    assert result.established and result.verified, result.output


async def test_openssl_rejects_a_worker_signed_by_another_ca(pki, tmp_path):
    files = pki.write(tmp_path)
    async with worker_process(pki.credentials(mutual=False)) as worker:
        result = await s_client(worker.address, "-CAfile", str(files["other_ca"]))
    assert result.code != 0
    assert not result.established
    assert "unable to get local issuer certificate" in result.output
    assert "certificate verify failed" in result.output


async def test_openssl_rejects_an_expired_worker_certificate(pki, tmp_path):
    files = pki.write(tmp_path)
    async with worker_process(pki.credentials(pki.expired, mutual=False)) as worker:
        result = await s_client(worker.address, "-CAfile", str(files["ca"]))
    assert result.code != 0
    assert not result.established
    assert "certificate has expired" in result.output


async def test_mutual_tls_worker_refuses_openssl_without_a_client_certificate(pki, tmp_path):
    """TLS 1.2 verifies the client inside the handshake; TLS 1.3 after it, at first read."""
    files = pki.write(tmp_path)
    ca = ("-CAfile", str(files["ca"]))
    client = ("-cert", str(files["cert"]), "-key", str(files["key"]))
    async with worker_process(pki.credentials(mutual=True)) as worker:
        with_certificate = await s_client(worker.address, *ca, *client, "-tls1_2")
        tls12 = await s_client(worker.address, *ca, "-tls1_2")
        # -ign_eof: keep reading after stdin ends, until the server closes the connection.
        tls13 = await s_client(worker.address, *ca, "-tls1_3", "-ign_eof")

    assert with_certificate.code == 0 and with_certificate.established, with_certificate.output

    assert tls12.code != 0, tls12.output
    assert not tls12.established, tls12.output

    # The client finishes its half of the handshake (and has verified the worker), but the
    # worker then drops the connection instead of speaking HTTP/2: the first read fails.
    assert tls13.verified, tls13.output
    assert tls13.code != 0, tls13.output
    assert "unexpected eof while reading" in tls13.output or "alert" in tls13.output, tls13.output
