"""Every way a TLS handshake can go wrong fails fast, names the problem and the worker.

Each scenario runs a real worker process, publishes its record (true, or lying about
``secure``), and dispatches from a caller configured wrongly for it. The caller gets
``NoWorkersAvailable`` whose message names the handshake problem and the worker's
address, a WARNING log line says the same, and the worker keeps serving callers that
are configured correctly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, caller, published, worker_process

Make = Callable[[Any], "wool.WorkerCredentials | None"]


@attrs.frozen
class Scenario:
    worker: Make
    caller: Make
    phrases: tuple[str, ...]
    good_caller: Make | None
    record_secure: bool | None = None  # publish a lying record with this flag


SCENARIOS = {
    "wrong-ca": Scenario(
        worker=lambda pki: pki.credentials(),
        caller=lambda pki: pki.credentials(pki.stranger, ca=pki.other_ca),
        phrases=("does not trust the worker's certificate", "CERTIFICATE_VERIFY_FAILED"),
        good_caller=lambda pki: pki.credentials(),
    ),
    "expired-worker-certificate": Scenario(
        worker=lambda pki: pki.credentials(pki.expired),
        caller=lambda pki: pki.credentials(),
        phrases=("TLS handshake failed", "certificate has expired"),
        good_caller=None,  # nobody should trust an expired certificate
    ),
    "expired-client-certificate": Scenario(
        worker=lambda pki: pki.credentials(),
        caller=lambda pki: pki.credentials(pki.expired),
        phrases=("TLS handshake refused", "requires a client certificate"),
        good_caller=lambda pki: pki.credentials(),
    ),
    "client-without-certificate": Scenario(
        worker=lambda pki: pki.credentials(mutual=True),
        caller=lambda pki: pki.ca_only(),
        phrases=("TLS handshake refused", "requires a client certificate"),
        good_caller=lambda pki: pki.credentials(pki.caller),
    ),
    "client-certificate-from-another-ca": Scenario(
        worker=lambda pki: pki.credentials(mutual=True),
        caller=lambda pki: pki.credentials(pki.stranger),
        phrases=("TLS handshake refused",),
        good_caller=lambda pki: pki.credentials(pki.caller),
    ),
    "certificate-for-another-name": Scenario(
        worker=lambda pki: pki.credentials(pki.dns_only),
        caller=lambda pki: pki.credentials(),
        phrases=("not issued for the address", "server_name"),
        good_caller=lambda pki: pki.credentials(server_name="wool-worker.test"),
    ),
    "plaintext-against-tls": Scenario(
        worker=lambda pki: pki.credentials(),
        caller=lambda pki: None,
        phrases=("closed the plaintext connection", "may serve TLS"),
        good_caller=lambda pki: pki.credentials(),
        record_secure=False,
    ),
    "tls-against-plaintext": Scenario(
        worker=lambda pki: None,
        caller=lambda pki: pki.credentials(),
        phrases=("TLS handshake failed", "does not answer in TLS", "WRONG_VERSION_NUMBER"),
        good_caller=lambda pki: None,
        record_secure=True,
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_handshake_failure_is_clear_and_does_not_hang(pki, discovery, caplog, name):
    scenario = SCENARIOS[name]
    caplog.set_level(logging.WARNING, logger="wool")
    async with asyncio.timeout(BOUND), worker_process(scenario.worker(pki)) as worker:
        record = worker
        if scenario.record_secure is not None:
            record = attrs.evolve(worker, secure=scenario.record_secure)

        async with (
            published(discovery, record),
            caller(discovery, scenario.caller(pki), worker.uid),
        ):
            with pytest.raises(wool.NoWorkersAvailable) as info:
                await r.add(1, 2)
            # The worker is skipped, not forgotten: a second call fails the same way.
            with pytest.raises(wool.NoWorkersAvailable):
                await r.add(1, 2)

        message = str(info.value)
        assert worker.address in message, message
        for phrase in scenario.phrases:
            assert phrase in message, message
        warnings = [
            rec.getMessage()
            for rec in caplog.records
            if rec.levelno == logging.WARNING and worker.address in rec.getMessage()
        ]
        assert warnings, "no warning names the worker"
        assert all(phrase in warnings[0] for phrase in scenario.phrases), warnings[0]

        if scenario.good_caller is not None:
            async with published(discovery, worker):
                async with caller(discovery, scenario.good_caller(pki), worker.uid):
                    assert await r.add(1, 2) == 3


async def test_expired_certificate_fixture_really_is_expired(pki):
    """Guard: the scenario above is about expiry, not about some other defect."""
    import datetime

    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pki.expired.cert)
    assert cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC)
    # Otherwise sound: same CA, IP SAN 127.0.0.1, and its key matches.
    assert cert.issuer == x509.load_pem_x509_certificate(pki.ca_pem).subject
    assert pki.credentials(pki.expired).can_serve
