"""A pool supervises the workers it spawned: it restarts the dead, gives up on the hopeless,
says so, and lets the calls in flight finish (up to ``grace``) when it is left."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

import wool
from tests.core import routines as r
from tests.reliability import routines as rr
from tests.reliability.support import Rendezvous, wait_exited
from wool import _settings

BOUND = 60.0
"""Every wait in these tests is bounded by this many seconds."""

FAST_RESTARTS = {"restart_backoff": 0.01, "restart_backoff_max": 0.05}


def refuse_to_start_when(flag: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every Python process started from now on exit at once, with a message, once
    ``flag`` exists (a ``sitecustomize`` on PYTHONPATH)."""
    folder = flag.parent / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"if os.path.exists({str(flag)!r}):\n"
        "    sys.stderr.write('sitecustomize: this worker refuses to start\\n')\n"
        "    sys.stderr.flush()\n"
        "    os._exit(3)\n"
    )
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *sys.path, path]))


async def test_workers_killed_with_sigkill_are_restarted_logged_and_published(caplog):
    caplog.set_level(logging.INFO, logger="wool")
    with _settings.override(**FAST_RESTARTS):
        async with wool.WorkerPool(size=2) as pool:
            assert pool.proxy is not None
            first = {w.metadata.uid: w.metadata.pid for w in pool.workers if w.metadata}
            for pid in first.values():
                os.kill(pid, signal.SIGKILL)
            await wait_exited(first.values(), BOUND)
            # The replacements are new processes with new uids, published through discovery.
            await pool.proxy.wait_until(
                lambda workers: len({m.uid for m in workers} - set(first)) == 2, timeout=BOUND
            )
            live = {w.metadata.uid: w.metadata.pid for w in pool.workers if w.metadata}
            assert len(live) == 2 and set(live).isdisjoint(first)
            assert {m.uid for m in pool.proxy.workers} == set(live)
            assert {await r.pid() for _ in range(6)} <= set(live.values())
    deaths = [m for m in caplog.messages if "was killed by SIGKILL" in m]
    assert sorted(uid for uid in first if any(uid in m for m in deaths)) == sorted(first)
    restarts = [m for m in caplog.messages if m.startswith("restarted worker ")]
    assert {m.split()[2] for m in restarts} == set(first)


async def test_without_restarts_dead_workers_leave_and_no_workers_available_says_why():
    async with wool.WorkerPool(size=1, restart=False, wait_for_workers=0.5) as pool:
        assert pool.proxy is not None
        [worker] = pool.workers
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        await worker.process.wait()
        assert pool.workers == []
        await pool.proxy.wait_until(lambda workers: not workers, timeout=BOUND)
        with pytest.raises(wool.NoWorkersAvailable) as caught:
            await r.add(1, 2)
    message = str(caught.value)
    assert f"{pool!r}: its own workers died once, 0 of 1 run now (restarts are off)" in message


async def test_a_call_right_after_the_workers_died_says_they_died():
    """Whether the call still finds the dead worker or waits for one, the error says why."""
    async with wool.WorkerPool(size=1, restart=False, wait_for_workers=0.5) as pool:
        [worker] = pool.workers
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        await worker.process.wait()
        with pytest.raises(wool.NoWorkersAvailable) as caught:
            await r.add(1, 2)
    assert "its own workers died once, 0 of 1 run now (restarts are off)" in str(caught.value)


async def test_a_worker_that_fails_to_start_every_time_is_given_up_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    flag = tmp_path / "refuse"
    refuse_to_start_when(flag, monkeypatch)
    tries = _settings.current().restart_tries
    with _settings.override(**FAST_RESTARTS):
        async with wool.WorkerPool(size=1, wait_for_workers=0.5) as pool:
            assert pool.proxy is not None and pool.group is not None
            [worker] = pool.workers
            assert worker.process is not None
            flag.touch()
            worker.process.send_signal(signal.SIGKILL)
            async with asyncio.timeout(BOUND):
                await pool.group.exhausted.wait()
            assert pool.workers == []
            await pool.proxy.wait_until(lambda workers: not workers, timeout=BOUND)
            with pytest.raises(wool.NoWorkersAvailable) as caught:
                await r.add(1, 2)
    message = str(caught.value)
    assert f"failed {tries} times in a row and is not restarted again" in message
    assert "sitecustomize: this worker refuses to start" in message
    [error] = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert "exited with code 3 before it started serving" in error.message
    assert "sitecustomize: this worker refuses to start" in error.message
    attempts = [m for m in caplog.messages if "(try " in m]
    assert [m.rsplit("(try ", 1)[1] for m in attempts] == [
        f"{n} of {tries})" for n in range(1, tries + 1)
    ]


async def test_leaving_the_pool_lets_the_calls_in_flight_finish_within_the_grace():
    async with Rendezvous() as rv:
        async with wool.WorkerPool(size=1, grace=BOUND):
            call = asyncio.ensure_future(rr.announce_then_return(rv.path, 1.0))
            worker = await rv.next_pid()
        # Leaving waited for the call: it finished on its worker (else: WorkerLost).
        async with asyncio.timeout(BOUND):
            assert await call == worker


async def test_calls_still_running_after_the_grace_raise_pool_closed():
    async with Rendezvous() as rv:
        pool = wool.WorkerPool(size=1, grace=0.2)
        async with pool:
            call = asyncio.ensure_future(rr.announce_then_wait(rv.path))
            stream = rr.announce_then_stall(rv.path)
            assert await anext(stream) == 0
            pending = asyncio.ensure_future(anext(stream))
            await rv.next_pid()
            await rv.next_pid()
        async with asyncio.timeout(BOUND):
            outcomes = await asyncio.gather(call, pending, return_exceptions=True)
            await stream.aclose()
    for outcome, routine in zip(
        outcomes, ["announce_then_wait", "announce_then_stall"], strict=True
    ):
        assert isinstance(outcome, wool.PoolClosed) and not isinstance(outcome, wool.WorkerLost)
        assert outcome.pool == repr(pool) and outcome.grace == 0.2
        assert f"{routine}() was still running" in str(outcome)
        assert f"{pool!r} was left" in str(outcome) and "grace of 0.2 s" in str(outcome)
