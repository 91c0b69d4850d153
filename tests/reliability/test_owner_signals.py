"""The process that owns a pool ends by SIGTERM or SIGINT: its pool is left as on a normal
exit (workers stopped, namespace files removed), and a program's own SIGTERM handler is
left alone."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid

import pytest

import wool
from tests.core import routines as r
from tests.reliability.support import (
    is_running,
    namespace_files,
    start_hosted_pool,
    stop_hosted_pool,
)

BOUND = 60.0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["explicit-namespace", "private-namespace"])
async def test_a_pool_owner_ended_by_a_signal_stops_its_workers_and_removes_its_files(
    kind: str, sig: signal.Signals
):
    explicit = f"sig-{uuid.uuid4().hex[:8]}" if kind == "explicit-namespace" else None
    owner = await asyncio.to_thread(start_hosted_pool, explicit, 2, until_signal=True)
    try:
        assert namespace_files(owner.namespace) != []
        owner.process.send_signal(sig)
        code = await asyncio.to_thread(owner.process.wait, BOUND)
    finally:
        stop_hosted_pool(owner.process)
    # SIGTERM ends it with the status a shell reports for SIGTERM; SIGINT as Python does.
    assert code == (128 + signal.SIGTERM if sig == signal.SIGTERM else -signal.SIGINT)
    assert not any(is_running(pid) for pid in owner.worker_pids)
    assert namespace_files(owner.namespace) == []


async def test_sigterm_to_the_owners_process_group_is_a_quiet_clean_exit():
    owner = await asyncio.to_thread(
        start_hosted_pool, None, 2, nested=True, until_signal=True, own_group=True
    )
    try:
        os.killpg(owner.process.pid, signal.SIGTERM)
        code = await asyncio.to_thread(owner.process.wait, BOUND)
        assert owner.process.stderr is not None
        stderr = owner.process.stderr.read().decode()
    finally:
        stop_hosted_pool(owner.process)
    assert code == 128 + signal.SIGTERM
    # The workers got the signal too: their exits are expected, not deaths to restart.
    [line] = stderr.splitlines()
    assert re.fullmatch(
        r"SIGTERM: leaving <WorkerPool \w+ size=2 grace=2> \(SIGTERM again to exit at once\)",
        line,
    )
    assert not any(is_running(pid) for pid in owner.worker_pids)
    assert namespace_files(owner.namespace) == []


async def test_a_programs_own_sigterm_handler_is_left_alone():
    def handler(signum: int, frame: object) -> None:
        raise AssertionError("not signalled in this test")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        async with wool.WorkerPool(size=1):
            assert signal.getsignal(signal.SIGTERM) is handler
            assert await r.add(1, 2) == 3
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_a_pool_handles_sigterm_only_while_it_is_open():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    async with wool.WorkerPool(size=1):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
