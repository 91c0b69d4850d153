"""The caller's private key never leaves its process; nested calls use the worker's identity."""

from __future__ import annotations

import asyncio
import base64
import pickle

import pytest

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, caller, published, recording_worker, worker_process


def key_material(pem: bytes) -> list[bytes]:
    """The forms a key could travel in: its PEM text and the DER bytes it encodes."""
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return [pem, base64.b64decode(body), b"PRIVATE KEY"]


async def test_the_task_a_worker_receives_holds_no_key_material(pki, discovery):
    async with asyncio.timeout(BOUND):
        async with recording_worker(pki.credentials().server_credentials()) as recording:
            worker = recording.metadata
            async with published(discovery, worker):
                async with caller(discovery, pki.credentials(pki.caller), worker.uid):
                    call = asyncio.ensure_future(r.add(1, 2))
                    await recording.arrived.wait()
                    call.cancel()
                    await asyncio.gather(call, return_exceptions=True)
    received = b"".join(recording.received)
    assert b"wool._caller_proxy" in received  # the task frame, with the pool's proxy in it
    for material in key_material(pki.caller.key):
        assert material not in received


async def test_a_tls_pools_proxy_pickles_without_key_and_unpickles_only_on_a_tls_worker(pki):
    async with asyncio.timeout(BOUND):
        async with wool.WorkerPool(size=1, credentials=pki.credentials()) as pool:
            assert pool.proxy is not None
            pickled = pool.proxy.pickled()
    for material in key_material(pki.worker.key):
        assert material not in pickled
    with pytest.raises(ValueError, match="only be unpickled by a worker that serves TLS"):
        pickle.loads(pickled)


async def test_nested_calls_under_mutual_tls_use_the_workers_own_identity(pki, discovery):
    """The caller's identity differs from the workers'; the nested calls still go through."""
    async with asyncio.timeout(BOUND):
        async with (
            worker_process(pki.credentials()) as first,
            worker_process(pki.credentials()) as second,
            published(discovery, first, second),
            caller(discovery, pki.credentials(pki.caller), first.uid, second.uid),
        ):
            assert await r.fib(7) == 13
            assert {await r.pid() for _ in range(6)} == {first.pid, second.pid}


async def test_a_worker_without_client_auth_names_it_when_a_routine_nests(pki, discovery):
    async with asyncio.timeout(BOUND):
        async with (
            # its certificate names 127.0.0.1 only
            worker_process(pki.credentials(pki.server_only), host="127.0.0.1") as worker,
            published(discovery, worker),
            caller(discovery, pki.credentials(pki.caller), worker.uid),
        ):
            assert await r.add(1, 2) == 3  # serving needs serverAuth only
            with pytest.raises(ValueError, match="clientAuth") as info:
                await r.add_nested(1, 2)
            assert "nested calls" in str(info.value)


async def test_a_plaintext_pool_nests_as_before():
    async with asyncio.timeout(BOUND), wool.WorkerPool(size=2):
        assert await r.fib(6) == 8


async def test_nested_calls_keep_the_callers_server_name(pki, discovery):
    """Workers certified for a DNS name: the worker's own credentials set no server_name."""
    async with asyncio.timeout(BOUND):
        async with (
            worker_process(pki.credentials(pki.dns_only)) as worker,
            published(discovery, worker),
            caller(discovery, pki.credentials(server_name="wool-worker.test"), worker.uid),
        ):
            assert await r.add_nested(2, 3) == 5
