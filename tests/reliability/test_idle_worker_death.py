"""A worker that dies while idle never fails a later call: a call the worker did not accept
goes to another worker; only an accepted call can end in ``WorkerLost``.

Each iteration SIGKILLs one of three real worker processes the caller has open sessions
with, waits until the process is gone, and calls before discovery has caught up: the
caller's discovery here learns of a death only when the test says so (after the calls),
as a real one does some time after the death, so every iteration routes a call to the
dead worker. A fresh worker process, started meanwhile, then takes the dead one's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

import wool
import wool.testing
from tests.reliability import routines as r
from tests.reliability.support import wait_exited
from wool._supervisor_spawn import WorkerProcess
from wool._transport import PROTOCOL_HEADER, PROTOCOL_VERSION
from wool.testing import StaticSubscriber

ITERATIONS = 200
BURST_ITERATIONS = 20
BURST = 12
STEP_SECONDS = 30.0
"""Bound on one iteration (spawning a worker on a busy machine included)."""


class LaggingSubscriber:
    """Announces what the test puts in ``events``, when it does.

    Pickles (as every task carries its proxy) to a subscriber announcing nothing: the
    routines of these tests make no nested calls.
    """

    def __init__(self) -> None:
        self.events: asyncio.Queue[wool.DiscoveryEvent] = asyncio.Queue()

    def __reduce__(self) -> tuple[Any, ...]:
        return (StaticSubscriber, ((),))

    def __aiter__(self) -> AsyncIterator[wool.DiscoveryEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[wool.DiscoveryEvent]:
        while True:
            yield await self.events.get()


class LaggingDiscovery:
    """A real local publisher (unused: the test spawns the workers) and a lagging subscriber."""

    def __init__(self, namespace: str) -> None:
        self.publisher = wool.LocalDiscovery(namespace).publisher
        self.subscriber = LaggingSubscriber()


class Rotation:
    """Three live workers published in a namespace, and a spare started ahead of need."""

    def __init__(self, subscriber: LaggingSubscriber) -> None:
        self.subscriber = subscriber
        self.live: list[WorkerProcess] = []
        self.spare: asyncio.Task[WorkerProcess] | None = None
        self.started: list[WorkerProcess] = []

    async def _start(self) -> WorkerProcess:
        worker = WorkerProcess()
        self.started.append(worker)
        await worker.start()
        return worker

    async def fill(self, proxy: wool.CallerProxy, count: int) -> None:
        while len(self.live) < count:
            if self.spare is None:
                self.spare = asyncio.ensure_future(self._start())
            worker, self.spare = await self.spare, None
            assert worker.metadata is not None
            self.subscriber.events.put_nowait(wool.DiscoveryEvent("worker-added", worker.metadata))
            self.live.append(worker)
            await proxy.wait_for([worker.uid], timeout=STEP_SECONDS)
        self.spare = asyncio.ensure_future(self._start())

    async def kill(self, index: int) -> WorkerProcess:
        victim = self.live.pop(index % len(self.live))
        assert victim.process is not None and victim.metadata is not None
        victim.process.send_signal(signal.SIGKILL)
        await wait_exited([victim.process.pid], STEP_SECONDS)
        return victim

    def announce_death(self, victim: WorkerProcess) -> None:
        assert victim.metadata is not None
        self.subscriber.events.put_nowait(wool.DiscoveryEvent("worker-dropped", victim.metadata))

    async def close(self) -> None:
        if self.spare is not None:
            self.spare.cancel()
            await asyncio.gather(self.spare, return_exceptions=True)
        await asyncio.gather(*(w.stop(grace=0) for w in self.started), return_exceptions=True)


@contextlib.asynccontextmanager
async def rotation() -> AsyncIterator[tuple[Rotation, wool.WorkerPool]]:
    discovery = LaggingDiscovery(f"idle-death-{os.getpid()}")
    async with wool.WorkerPool(discovery=discovery) as pool:
        workers = Rotation(discovery.subscriber)
        try:
            yield workers, pool
        finally:
            await workers.close()


async def open_sessions(workers: list[WorkerProcess]) -> None:
    """Call until every live worker served one call, so each has an established session.

    A new worker at an address of a host where workers died may start paused (the caller
    tries it in the background first): the calls go on until it is used, within the
    iteration's time bound.
    """
    wanted = {w.metadata.pid for w in workers if w.metadata}
    served: set[int] = set()
    while not wanted <= served:
        served.add(await r.pid())


@pytest.mark.timeout(600)
async def test_a_call_right_after_an_idle_worker_was_killed_never_fails():
    outcomes: list[str] = []
    async with rotation() as (workers, pool):
        assert pool.proxy is not None
        for i in range(ITERATIONS):
            async with asyncio.timeout(STEP_SECONDS):
                await workers.fill(pool.proxy, 3)
                await open_sessions(workers.live)
                victim = await workers.kill(i)
                # Round robin over the three known workers: one of these is the dead one.
                for n in range(3):
                    try:
                        result = await r.add(i, n)
                        outcomes.append("ok" if result == i + n else f"wrong value {result}")
                    except Exception as exc:
                        outcomes.append(f"{type(exc).__name__}: {exc}")
                workers.announce_death(victim)
    failures = [o for o in outcomes if o != "ok"]
    assert len(outcomes) == 3 * ITERATIONS
    assert failures == []


@pytest.mark.timeout(300)
async def test_a_burst_of_calls_right_after_an_idle_worker_was_killed_all_succeed():
    failures: list[str] = []
    async with rotation() as (workers, pool):
        assert pool.proxy is not None
        for i in range(BURST_ITERATIONS):
            async with asyncio.timeout(STEP_SECONDS):
                await workers.fill(pool.proxy, 3)
                await open_sessions(workers.live)
                victim = await workers.kill(i)
                results = await asyncio.gather(
                    *(r.add(i, n) for n in range(BURST)), return_exceptions=True
                )
                for n, result in enumerate(results):
                    if result != i + n:
                        failures.append(f"iteration {i}, call {n}: {result!r}")
                workers.announce_death(victim)
    assert failures == []


class VanishingWorker:
    """A real gRPC server that answers a session as a wool worker does, reads the first
    batch of frames, then ends the session with ``code`` before accepting anything, as a
    worker that died with the call's start frame in flight looks to its caller."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.starts_read = 0
        self._server: grpc.aio.Server | None = None

    async def __aenter__(self) -> wool.WorkerMetadata:
        async def session(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            await context.send_initial_metadata(((PROTOCOL_HEADER, PROTOCOL_VERSION),))
            async for _ in requests:
                self.starts_read += 1
                break
            await context.abort(self.code, "the worker vanished")
            yield b""  # pragma: no cover - makes this an async generator

        handler = grpc.method_handlers_generic_handler(
            "wool.v1.Worker", {"Session": grpc.stream_stream_rpc_method_handler(session)}
        )
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return wool.WorkerMetadata("vanishing", f"127.0.0.1:{port}", os.getpid(), "0")

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        await self._server.stop(None)


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN]
)
async def test_a_call_whose_worker_ends_the_session_before_accepting_goes_to_another(
    code: grpc.StatusCode,
):
    vanishing = VanishingWorker(code)
    async with vanishing as metadata, wool.testing.InProcessPool(1, others=[metadata]):
        # Round robin over the two: half of these calls are sent to the vanishing worker.
        results = [await r.add(n, 1) for n in range(4)]
    assert results == [1, 2, 3, 4]
    assert vanishing.starts_read >= 1  # the vanishing worker did read call starts
