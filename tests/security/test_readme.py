"""The README's Security section works as written: its openssl commands make certificates
that wool and openssl accept, and its mutual-TLS example prints what it says."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, caller
from tests.security.test_openssl import s_client

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("bash") is None, reason="needs openssl, bash"
)


def security_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Security\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert match, "README.md has no Security section"
    return match.group(1)


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", security_section(), re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """Run the README's certificate commands; the ``certs`` folder they make."""
    [commands] = [b for b in blocks("sh") if "openssl req -x509" in b]
    where = tmp_path_factory.mktemp("readme")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "worker-cert.pem: OK" in done.stdout and "client-cert.pem: OK" in done.stdout
    return where / "certs"


def test_readme_states_the_threat_model_and_defaults():
    section = security_section()
    assert "anyone who can" in section.lower() or "whoever can" in section.lower()
    assert "127.0.0.1" in section and "SECURITY WARNING" in section
    assert "WOOL_MAX_MESSAGE_BYTES" in section


def test_readme_mutual_tls_example_runs(certs):
    [example] = [b for b in blocks("python") if "asyncio.run(main())" in b]
    script = certs.parent / "example.py"
    script.write_text(example)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=certs.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello, mutual TLS"


async def test_readme_client_certificate_reaches_mutual_tls_workers(certs, discovery):
    worker_credentials = wool.WorkerCredentials.from_files(
        ca_path=certs / "ca-cert.pem",
        key_path=certs / "worker-key.pem",
        cert_path=certs / "worker-cert.pem",
        mutual=True,
    )
    client = wool.WorkerCredentials.from_files(
        ca_path=certs / "ca-cert.pem",
        key_path=certs / "client-key.pem",
        cert_path=certs / "client-cert.pem",
    )
    async with asyncio.timeout(BOUND):
        async with wool.WorkerPool(size=1, discovery=discovery, credentials=worker_credentials):
            [worker] = [f for f in discovery.root.glob("*.json")]
            uid = worker.stem
            async with caller(discovery, client, uid) as pool:
                assert await r.add(2, 2) == 4
                [metadata] = list(pool.proxy.workers)
            # the README's openssl check, with PORT filled in
            [check] = [b for b in blocks("sh") if "s_client" in b]
            assert "-CAfile certs/ca-cert.pem -cert certs/client-cert.pem" in check
            result = await s_client(
                metadata.address,
                "-CAfile",
                str(certs / "ca-cert.pem"),
                "-cert",
                str(certs / "client-cert.pem"),
                "-key",
                str(certs / "client-key.pem"),
            )
            assert result.code == 0 and result.verified, result.output
