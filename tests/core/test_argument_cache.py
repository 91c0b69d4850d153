"""A large immutable argument travels once per worker; the worker's store stays bounded,
and a worker that lost an argument (evicted, or restarted) gets it again."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal

import wool
from tests.core import payload_routines as p
from tests.reliability.support import wait_exited
from wool import _settings

MB = 1_000_000
BOUND = 60.0


def sha(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_repeated_large_argument_is_kept_by_the_worker_and_not_sent_again():
    data = os.urandom(2 * MB)
    async with wool.WorkerPool(size=1):
        # Sent once as it is, a second time with its digest (the worker keeps it) ...
        seen = [await p.identity(data) for _ in range(4)]
        concurrent = await asyncio.gather(*(p.identity(data) for _ in range(6)))
    assert {digest for _, _, digest in seen + concurrent} == {sha(data)}
    # ... then one object on the worker served every later call: it was not sent again.
    assert len({object_id for _, object_id, _ in seen[1:] + concurrent}) == 1


async def test_mutable_buffers_are_sent_every_time_with_their_current_content():
    data = bytearray(os.urandom(2 * MB))
    original = sha(data)
    async with wool.WorkerPool(size=1):
        first = await p.identity(data)
        data[0] ^= 0xFF
        second = await p.identity(data)
    assert (first[2], second[2]) == (original, sha(data))


async def test_the_worker_store_is_bounded_and_a_lost_argument_is_sent_again():
    a, b, c = (os.urandom(2 * MB) for _ in range(3))
    # Workers keep at most 5 MB (they take the settings the pool starts with); this
    # caller, outside the override, assumes 256 MB, so it names arguments the worker
    # has dropped and must send them again when asked.
    small = _settings.override(argument_cache_bytes=5 * MB)
    small.__enter__()
    try:
        pool = wool.WorkerPool(size=1)
        await pool.__aenter__()
    finally:
        small.__exit__(None, None, None)
    try:
        await p.identity(a)
        kept_a = await p.identity(a)  # the second time it is named, and kept
        assert (await p.identity(a))[1] == kept_a[1]
        for other in (b, c):  # 6 MB: a, the least recently used, is evicted
            await p.identity(other)
            await p.identity(other)
        again_a = await p.identity(a)
        again_c = await p.identity(c)
    finally:
        await pool.__aexit__(None, None, None)
    assert again_a[2] == sha(a) and again_c[2] == sha(c)
    assert again_a[1] != kept_a[1]  # the worker lost a and received it anew


async def test_a_restarted_worker_receives_the_argument_again():
    data = os.urandom(2 * MB)
    with _settings.override(restart_backoff=0.01, restart_backoff_max=0.05):
        async with wool.WorkerPool(size=1) as pool:
            assert pool.proxy is not None
            pid, _, digest = await p.identity(data)
            assert digest == sha(data)
            first = {w.metadata.uid for w in pool.workers if w.metadata}
            os.kill(pid, signal.SIGKILL)
            await wait_exited([pid], BOUND)
            await pool.proxy.wait_until(
                lambda workers: bool({m.uid for m in workers} - first), timeout=BOUND
            )
            new_pid, _, digest = await p.identity(data)
    assert new_pid != pid and digest == sha(data)
