"""A worker whose event loop is blocked: calls it does not accept within
``ACCEPT_SECONDS`` go to another worker, and it never runs them when it wakes up; it is
skipped meanwhile, and used again once it answers."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import Rendezvous
from wool._connection import ACCEPT_SECONDS

BLOCK_SECONDS = ACCEPT_SECONDS + 4.0
"""Long enough that calls sent to the blocked worker are given up on before it wakes."""
STEP_SECONDS = 30.0
QUICK = 4


def runs(folder: Path) -> dict[str, list[int]]:
    return {p.name: [int(x) for x in p.read_text().split()] for p in folder.iterdir()}


async def test_calls_go_around_a_blocked_worker_and_it_never_runs_the_ones_given_up(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="wool.connection")
    folder = Path(tempfile.mkdtemp(prefix="woolmark-"))
    try:
        async with Rendezvous() as rv, wool.WorkerPool(size=2) as pool:
            pids = {w.metadata.pid for w in pool.workers if w.metadata}
            blocker = asyncio.ensure_future(r.block_loop(rv.path, BLOCK_SECONDS))
            blocked = await rv.next_pid(STEP_SECONDS)
            (other,) = pids - {blocked}
            async with asyncio.timeout(STEP_SECONDS):
                # Concurrent calls: some are sent to the blocked worker, then given up.
                concurrent = await asyncio.gather(
                    *(r.mark(str(folder), f"concurrent-{n}") for n in range(QUICK))
                )
                given_up = sum("did not accept" in m for m in caplog.messages)
                # The blocked worker is now skipped: these go straight to the other one.
                sequential = [await r.mark(str(folder), f"sequential-{n}") for n in range(QUICK)]
                skipped = sum("did not accept" in m for m in caplog.messages) == given_up
            assert concurrent == [other] * QUICK
            assert sequential == [other] * QUICK
            assert given_up >= 1  # some calls really were sent to the blocked worker
            assert skipped
            async with asyncio.timeout(STEP_SECONDS):
                assert await blocker == blocked
                # Once it answers again, the worker is used again. Its session reads
                # frames in order: by the time it serves this call, it has read (and
                # refused) the starts of the calls given up on.
                served = set()
                for n in range(20):
                    served.add(await r.mark(str(folder), f"after-{n}"))
                    if blocked in served:
                        break
            assert blocked in served
        # Every call ran exactly once, and the blocked worker ran none given up on.
        ran = runs(folder)
        expected = {f"concurrent-{n}" for n in range(QUICK)} | {
            f"sequential-{n}" for n in range(QUICK)
        }
        assert expected <= set(ran)
        assert {key: pids_ for key, pids_ in ran.items() if key in expected} == {
            key: [other] for key in expected
        }
        assert all(len(v) == 1 for v in ran.values())
    finally:
        for path in folder.iterdir():
            path.unlink()
        os.rmdir(folder)
