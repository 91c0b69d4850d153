"""Workers whose address answers but never completes a connection (anyone can publish
such records): the caller pauses them instead of dialling them on every call, and says
so in a bounded number of log lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

import wool
from tests.core import routines as r
from tests.support import conditions
from tests.support.directory_discovery import DirectoryDiscovery
from wool._log_limit import BURST
from wool._supervisor_spawn import WorkerProcess


class Slammer:
    """A TCP server on loopback that accepts every connection and closes it at once."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        # Closed before the test's loop ends, or the transport is collected unclosed later,
        # in another test, as an unraisable ResourceWarning.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def slammer() -> AsyncIterator[Slammer]:
    door = Slammer()
    door.server = await asyncio.start_server(door._accept, "127.0.0.1", 0)
    door.port = door.server.sockets[0].getsockname()[1]
    try:
        yield door
    finally:
        await door.close()


def fake(uid: str, port: int) -> wool.WorkerMetadata:
    return wool.WorkerMetadata(uid, f"127.0.0.1:{port}", os.getpid(), "fake")


def uids(proxy: wool.CallerProxy) -> set[str]:
    return {m.uid for m in proxy.workers}


async def test_a_worker_that_cannot_be_connected_to_is_left_out_and_tried_in_the_background(
    tmp_path,
):
    """Its failure is transient (the balancer skips it for that call only), so without
    pauses every call would dial it again."""
    discovery = DirectoryDiscovery(tmp_path / "workers")
    async with slammer() as door, discovery.publisher as publisher:
        await publisher.publish(wool.DiscoveryEvent("worker-added", fake("fake", door.port)))
        async with wool.WorkerPool(size=1, discovery=discovery) as pool:
            proxy = pool.proxy
            assert proxy is not None
            await proxy.wait_for(["fake"], timeout=10)
            async with asyncio.timeout(10):
                while door.accepted == 0:  # round robin reaches the fake within two calls
                    assert await r.add(1, 1) == 2
            assert "fake" not in uids(proxy)  # paused: the balancer does not see it
            assert [await r.add(i, 1) for i in range(10)] == list(range(1, 11))
            tried = door.accepted
            # the first background try comes after 1 s
            await conditions.until(lambda: door.accepted > tried, "a background try", 10)
            assert "fake" not in uids(proxy)


async def test_a_paused_worker_comes_back_once_it_can_be_connected_to(tmp_path):
    discovery = DirectoryDiscovery(tmp_path / "workers")
    async with contextlib.AsyncExitStack() as stack:
        door = await stack.enter_async_context(slammer())
        publisher = await stack.enter_async_context(discovery.publisher)
        await publisher.publish(wool.DiscoveryEvent("worker-added", fake("late", door.port)))
        pool = await stack.enter_async_context(wool.WorkerPool(size=1, discovery=discovery))
        proxy = pool.proxy
        assert proxy is not None
        await proxy.wait_for(["late"], timeout=10)
        async with asyncio.timeout(10):
            while "late" in uids(proxy):
                assert await r.add(1, 1) == 2
        await door.close()
        worker = WorkerProcess(host="127.0.0.1", port=door.port)  # a real worker answers there
        await worker.start()
        stack.push_async_callback(worker.stop, 0)
        await proxy.wait_until(lambda workers: "late" in {m.uid for m in workers}, 30)
        pids = {await r.pid() for _ in range(4)}
    assert len(pids) == 2  # both the pool's worker and the one behind "late" ran calls


async def test_many_unreachable_workers_log_a_bounded_number_of_warnings(tmp_path, caplog):
    """Their warnings are rate-limited, and their uids (from records) escaped."""
    caplog.set_level(logging.WARNING, "wool.connection")
    discovery = DirectoryDiscovery(tmp_path / "workers")
    count = 6 * BURST
    async with contextlib.AsyncExitStack() as stack:
        doors = [await stack.enter_async_context(slammer()) for _ in range(count)]
        publisher = await stack.enter_async_context(discovery.publisher)
        for index, door in enumerate(doors):
            await publisher.publish(
                wool.DiscoveryEvent("worker-added", fake(_uid(index), door.port))
            )
        async with wool.WorkerPool(size=1, discovery=discovery) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([_uid(i) for i in range(count)], timeout=10)
            results = [await r.add(i, 1) for i in range(5)]
    assert results == [1, 2, 3, 4, 5]
    assert any(door.accepted for door in doors)
    warnings = [rec for rec in caplog.records if rec.name == "wool.connection"]
    assert 1 <= len(warnings) <= BURST  # without the limit: one (or more) per fake
    assert all(rec.getMessage().isprintable() for rec in warnings)  # uids escaped


def _uid(index: int) -> str:
    return f"fake-{index}" if index else "fake\x1b[2J\n-0"
