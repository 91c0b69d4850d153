"""A caller that finds only workers of the other kind (TLS or plaintext) is told so."""

from __future__ import annotations

import uuid

import pytest

import wool
from tests.core import routines as r


@pytest.mark.parametrize("workers_tls", [True, False], ids=["tls-workers", "plaintext-workers"])
async def test_no_workers_available_names_workers_of_the_other_kind(pki, workers_tls: bool):
    namespace = f"mismatch-{uuid.uuid4().hex[:8]}"
    serving = pki.credentials() if workers_tls else None
    calling = None if workers_tls else pki.credentials()
    async with wool.WorkerPool(
        size=1, discovery=wool.LocalDiscovery(namespace), credentials=serving
    ):
        async with wool.WorkerPool(
            discovery=wool.LocalDiscovery(namespace), credentials=calling, wait_for_workers=2.0
        ):
            with pytest.raises(wool.NoWorkersAvailable) as caught:
                await r.add(1, 2)
    message = str(caught.value)
    if workers_tls:
        assert "(looking for workers with plaintext)" in message
        assert "1 TLS worker(s) exist, but this pool has no credentials=" in message
    else:
        assert "(looking for workers with TLS)" in message
        assert "1 plaintext worker(s) exist, but this pool has credentials=" in message
