"""TLS end to end with real worker processes: pools, routing by the secure flag, lying records."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, caller, published, worker_process
from tests.support.directory_discovery import DirectoryDiscovery


async def test_mutual_tls_pool_runs_routines_and_nested_routines(pki):
    async with asyncio.timeout(BOUND):
        async with wool.WorkerPool(size=2, credentials=pki.credentials()) as pool:
            assert all(w.metadata is not None and w.metadata.secure for w in pool.workers)
            assert await r.add(1, 2) == 3
            assert await r.fib(7) == 13  # workers dispatch to each other over mutual TLS
            assert [i async for i in r.count_up(3)] == [0, 1, 2]
            pids = {await r.pid() for _ in range(6)}
            assert pids == {w.metadata.pid for w in pool.workers if w.metadata}


async def test_one_way_tls_pool_runs_routines(pki):
    async with asyncio.timeout(BOUND):
        async with wool.WorkerPool(size=2, credentials=pki.credentials(mutual=False)) as pool:
            assert all(w.metadata is not None and w.metadata.secure for w in pool.workers)
            assert await r.add(2, 3) == 5
            assert await r.fib(6) == 8


async def test_caller_with_only_the_ca_uses_one_way_tls_workers(pki, discovery):
    async with asyncio.timeout(BOUND):
        async with wool.WorkerPool(
            size=1, discovery=discovery, credentials=pki.credentials(mutual=False)
        ) as workers:
            uids = [w.uid for w in workers.workers]
            async with caller(discovery, pki.ca_only(), *uids):
                assert await r.add(20, 22) == 42


async def test_worker_certificate_for_a_dns_name_works_with_server_name(pki, discovery):
    async with asyncio.timeout(BOUND):
        async with worker_process(pki.credentials(pki.dns_only)) as worker:
            async with published(discovery, worker):
                named = pki.credentials(server_name="wool-worker.test")
                async with caller(discovery, named, worker.uid):
                    assert await r.add(1, 1) == 2


async def test_each_caller_uses_only_workers_of_its_kind(pki, discovery):
    """Secure and plaintext workers published through one discovery; callers pick by kind."""
    async with asyncio.timeout(BOUND):
        async with (
            wool.WorkerPool(size=2, discovery=discovery, credentials=pki.credentials()) as tls,
            wool.WorkerPool(size=2, discovery=DirectoryDiscovery(discovery.root)) as plain,
        ):
            tls_pids = {w.metadata.pid: w.uid for w in tls.workers if w.metadata}
            plain_pids = {w.metadata.pid: w.uid for w in plain.workers if w.metadata}
            # Both kinds are published before either caller starts, so each caller's first
            # look at discovery holds all four records: what it routes to is its choice.
            assert len(list(discovery.root.glob("*.json"))) == 4
            async with caller(discovery, pki.credentials(), *tls_pids.values()) as secure:
                assert {m.uid for m in secure.proxy.workers} == set(tls_pids.values())
                assert {await r.pid() for _ in range(8)} == set(tls_pids)
            async with caller(discovery, None, *plain_pids.values()) as insecure:
                assert {m.uid for m in insecure.proxy.workers} == set(plain_pids.values())
                assert {await r.pid() for _ in range(8)} == set(plain_pids)


async def test_plaintext_worker_claiming_tls_fails_the_handshake_and_is_skipped(
    pki, discovery, caplog
):
    caplog.set_level(logging.WARNING, logger="wool")
    async with asyncio.timeout(BOUND):
        async with (
            worker_process(None) as plaintext,
            worker_process(pki.credentials()) as genuine,
        ):
            liar = attrs.evolve(plaintext, secure=True)
            async with published(discovery, liar):
                async with caller(discovery, pki.credentials(), liar.uid):
                    with pytest.raises(wool.NoWorkersAvailable) as info:
                        await r.add(1, 2)
                message = str(info.value)
                assert liar.address in message
                assert "TLS handshake failed" in message
                assert "does not answer in TLS" in message
                assert _warned(caplog, liar.address, "does not answer in TLS")

            async with published(discovery, liar, genuine):
                async with caller(discovery, pki.credentials(), liar.uid, genuine.uid):
                    pids = {await r.pid() for _ in range(6)}
                assert pids == {genuine.pid}


async def test_tls_worker_claiming_plaintext_fails_the_handshake_and_is_skipped(
    pki, discovery, caplog
):
    caplog.set_level(logging.WARNING, logger="wool")
    async with asyncio.timeout(BOUND):
        async with (
            worker_process(pki.credentials()) as tls,
            worker_process(None) as genuine,
        ):
            liar = attrs.evolve(tls, secure=False)
            async with published(discovery, liar):
                async with caller(discovery, None, liar.uid):
                    with pytest.raises(wool.NoWorkersAvailable) as info:
                        await r.add(1, 2)
                message = str(info.value)
                assert liar.address in message
                assert "closed the plaintext connection" in message
                assert "may serve TLS" in message
                assert _warned(caplog, liar.address, "may serve TLS")

            async with published(discovery, liar, genuine):
                async with caller(discovery, None, liar.uid, genuine.uid):
                    pids = {await r.pid() for _ in range(6)}
                assert pids == {genuine.pid}


def _warned(caplog, address: str, phrase: str) -> bool:
    return any(
        record.levelno == logging.WARNING
        and address in record.getMessage()
        and phrase in record.getMessage()
        for record in caplog.records
    )
