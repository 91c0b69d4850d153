"""A worker whose event loop is blocked: calls it does not accept within the accept
timeout (the setting ``accept_timeout``, 2 s) go to another worker, and it never runs
them when it wakes up; it is skipped meanwhile, and used again once it answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import grpc.aio
import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import (
    PROTOCOL_HEADER,
    SESSION_METHOD,
    Rendezvous,
    identity,
    proxy_bytes,
    request_batch,
    task_batch,
)
from wool._caller_connection import UNACCEPTED_PER_SESSION
from wool._metadata import WorkerMetadata
from wool._settings import DEFAULTS
from wool._transport import PROTOCOL_VERSION
from wool._wire import worker_pb2 as pb

BLOCK_SECONDS = DEFAULTS.accept_timeout + 4.0
"""Long enough that calls sent to the blocked worker are given up on before it wakes."""
STEP_SECONDS = 30.0
QUICK = 4


@contextlib.asynccontextmanager
async def one_worker_blocked() -> AsyncIterator[tuple[int, int, asyncio.Future[int]]]:
    """A pool of two workers, one of which blocks its loop for ``BLOCK_SECONDS``: yields
    that worker's pid, the other's, and the call that blocks it."""
    async with Rendezvous() as rv, wool.WorkerPool(size=2) as pool:
        pids = {w.metadata.pid for w in pool.workers if w.metadata}
        blocker = asyncio.ensure_future(r.block_loop(rv.path, BLOCK_SECONDS))
        blocked = await rv.next_pid(STEP_SECONDS)
        (other,) = pids - {blocked}
        yield blocked, other, blocker


def runs(folder: Path) -> dict[str, list[int]]:
    return {p.name: [int(x) for x in p.read_text().split()] for p in folder.iterdir()}


async def test_calls_go_around_a_blocked_worker_and_it_never_runs_the_ones_given_up(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="wool.connection")
    folder = Path(tempfile.mkdtemp(prefix="woolmark-"))
    try:
        async with one_worker_blocked() as (blocked, other, blocker):
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
        await asyncio.to_thread(_remove, folder)


async def test_a_standby_call_on_a_worker_blocked_past_the_timeout_runs_once_elsewhere_later(
    caplog: pytest.LogCaptureFixture,
):
    # One worker, concurrency 1, standby on: while its loop is blocked, the first of the
    # waiting calls is sent to it as a standby; the caller gives that up quietly after
    # the accept timeout (a long call, not a fault), and the worker, when it wakes, must
    # not start it: every call runs once, after the blocker.
    caplog.set_level(logging.DEBUG, logger="wool.connection")
    folder = Path(tempfile.mkdtemp(prefix="woolmark-"))
    try:
        async with (
            Rendezvous() as rv,
            wool.WorkerPool(size=1, concurrency=1, standby=True, loadbalancer="leastbusy"),
        ):
            blocker = asyncio.ensure_future(r.block_loop(rv.path, BLOCK_SECONDS))
            blocked = await rv.next_pid(STEP_SECONDS)
            async with asyncio.timeout(STEP_SECONDS):
                marks = await asyncio.gather(
                    *(r.mark(str(folder), f"waiting-{n}") for n in range(QUICK))
                )
                assert await blocker == blocked
        assert marks == [blocked] * QUICK
        assert runs(folder) == {f"waiting-{n}": [blocked] for n in range(QUICK)}
        assert any("freed no slot for standby mark()" in m for m in caplog.messages)
        assert not [m for m in caplog.messages if "did not accept" in m]  # no alarm raised
    finally:
        await asyncio.to_thread(_remove, folder)


class Session:
    """A raw session driven frame by frame, as a caller's would be."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        method = channel.stream_stream(
            SESSION_METHOD, request_serializer=identity, response_deserializer=identity
        )
        self.call = method(self._requests(), metadata=((PROTOCOL_HEADER, PROTOCOL_VERSION),))
        self.frames: list[pb.Response] = []

    async def _requests(self) -> AsyncIterator[bytes]:
        while (batch := await self.outbox.get()) is not None:
            yield batch

    async def until(self, predicate: Callable[[pb.Response], bool]) -> pb.Response:
        while True:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            message = await self.call.read()
            assert message is not grpc.aio.EOF, "the worker ended the session"
            self.frames.extend(pb.Responses.FromString(message).frames)


@contextlib.asynccontextmanager
async def raw_session(folder: Path) -> AsyncIterator[tuple[Session, WorkerMetadata]]:
    """A pool of one worker (its routines imported) and a raw session with it."""
    async with wool.WorkerPool(size=1) as pool:
        assert await r.mark(str(folder), "warm-up") > 0  # routines imported there
        metadata = pool.workers[0].metadata
        assert metadata is not None
        async with grpc.aio.insecure_channel(metadata.address) as channel:
            session = Session(channel)
            await session.call.initial_metadata()
            try:
                yield session, metadata
            finally:
                session.outbox.put_nowait(None)
                session.call.cancel()


@pytest.mark.parametrize("caller", ["still waits", "gave up"])
async def test_a_call_accepted_late_starts_only_if_its_caller_confirms(caller: str):
    # One batch, two calls: the first is accepted at once, lets the loop turn (the second
    # queues its "accepted" behind the first's, still being written) and then blocks the
    # loop, so the second's "accepted" reaches gRPC too close to its deadline; the worker
    # then asks its caller before starting it.
    folder = Path(tempfile.mkdtemp(prefix="woolmark-"))
    try:
        async with raw_session(folder) as (session, metadata):
            proxy = proxy_bytes()
            deadline_ms = 2000  # late (margin 0.5 s) once the first call blocked 3 s
            session.outbox.put_nowait(
                task_batch(1, r.yield_then_block, (3.0,), proxy=proxy, accept_by=60_000)
                + task_batch(2, r.mark, (str(folder), "late"), proxy=proxy, accept_by=deadline_ms)
            )
            async with asyncio.timeout(STEP_SECONDS):
                accepted = await session.until(lambda f: f.call == 2)
                assert accepted.WhichOneof("frame") == "accepted"
                await session.until(lambda f: f.call == 2 and f.confirm)
                if caller == "still waits":
                    answer, outcome = pb.Request(call=2, confirmed=True), "value"
                else:
                    answer, outcome = pb.Request(call=2, cancel=pb.Cancel()), "cancelled"
                session.outbox.put_nowait(request_batch(answer))
                end = await session.until(
                    lambda f: (
                        f.call == 2
                        and f.WhichOneof("frame") is not None
                        and f.WhichOneof("frame") != "accepted"
                    )
                )
                assert end.WhichOneof("frame") == outcome
        ran = runs(folder)
        assert ran.get("late", []) == ([metadata.pid] if caller == "still waits" else [])
    finally:
        await asyncio.to_thread(_remove, folder)


async def test_a_call_read_in_time_but_reached_after_its_deadline_never_starts():
    # One batch, two calls: the first is accepted and at once blocks the worker's loop
    # for longer than the second's deadline; the worker gets to the second too late and
    # refuses it without running it.
    folder = Path(tempfile.mkdtemp(prefix="woolmark-"))
    try:
        async with raw_session(folder) as (session, _):
            proxy = proxy_bytes()
            session.outbox.put_nowait(
                task_batch(1, r.sleep_blocking, (3.0,), proxy=proxy, accept_by=60_000)
                + task_batch(2, r.mark, (str(folder), "late"), proxy=proxy, accept_by=2000)
            )
            async with asyncio.timeout(STEP_SECONDS):
                first = await session.until(lambda f: f.call == 1)
                assert first.WhichOneof("frame") == "accepted"
                end = await session.until(lambda f: f.call == 2)
                assert end.WhichOneof("frame") == "rejected"
                assert end.late and end.rejected.transient
        assert "late" not in runs(folder)
    finally:
        await asyncio.to_thread(_remove, folder)


async def test_a_burst_larger_than_the_send_window_goes_around_a_blocked_worker():
    burst = 2 * UNACCEPTED_PER_SESSION + 100
    async with one_worker_blocked() as (blocked, other, blocker):
        async with asyncio.timeout(STEP_SECONDS):
            # Calls beyond the window wait at the caller; when the calls ahead of them
            # give up on the silent worker, they go to the other one too.
            served = await asyncio.gather(*(r.pid() for _ in range(burst)))
        assert served == [other] * burst
        async with asyncio.timeout(STEP_SECONDS):
            assert await blocker == blocked


def _remove(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


async def test_a_caller_that_blocks_its_own_loop_does_not_blame_its_workers(
    caplog: pytest.LogCaptureFixture,
):
    # A caller that starts calls and then keeps its loop busy past the accept timeout
    # (here one blocking sleep; in practice a hundred thousand calls started at once)
    # writes their starts only afterwards: the workers are not silent, just not asked yet.
    caplog.set_level(logging.WARNING, logger="wool.connection")
    async with wool.WorkerPool(size=2) as pool:
        pids = {w.metadata.pid for w in pool.workers if w.metadata}
        async with asyncio.timeout(STEP_SECONDS):
            await asyncio.gather(*(r.pid() for _ in range(8)))  # both sessions open
            calls = [asyncio.ensure_future(r.pid()) for _ in range(8)]
            await asyncio.sleep(0)  # each call queues its start, and waits
            time.sleep(DEFAULTS.accept_timeout + 1.0)  # noqa: ASYNC251 (the point)
            served = await asyncio.gather(*calls)
        assert set(served) <= pids
        assert not [m for m in caplog.messages if "did not accept" in m]
