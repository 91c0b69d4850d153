"""Subscribers and publishers in other processes, including ones that crash."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import cloudpickle
import pytest

import wool
from tests.core import routines
from tests.discovery_local.conftest import (
    CHILD,
    EVENT_TIMEOUT,
    added,
    child_env,
    dropped,
    metadata,
    next_event,
    read_table,
    updated,
)
from wool import WorkerMetadata
from wool_discovery_local import LocalDiscovery, LocalSubscriber
from wool_discovery_local._lock import FileLock
from wool_discovery_local._names import Paths


@contextlib.asynccontextmanager
async def child(mode: str, argument: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """Runs ``_child.py``; on the way out closes its stdin, or kills it, and reaps it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        mode,
        argument,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            async with asyncio.timeout(EVENT_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise


async def message(proc: asyncio.subprocess.Process) -> dict:
    """The child's next JSON line."""
    assert proc.stdout is not None
    async with asyncio.timeout(EVENT_TIMEOUT):
        line = await proc.stdout.readline()
    assert line, "the child exited without saying anything"
    return json.loads(line)


async def event_of(proc: asyncio.subprocess.Process) -> tuple[str, WorkerMetadata]:
    said = await message(proc)
    return said["type"], WorkerMetadata.from_dict(said["metadata"])


def shipped(subscriber: LocalSubscriber) -> str:
    return base64.b64encode(cloudpickle.dumps(subscriber)).decode()


async def test_a_subscriber_in_another_process_follows_the_events(discovery: LocalDiscovery):
    early, late = metadata("early", tags={"a"}), metadata("late")
    async with discovery.publisher as publisher:
        await publisher.publish(added(early))
        async with child("subscribe", shipped(discovery.subscriber)) as proc:
            assert (await message(proc))["type"] == "ready"
            assert await event_of(proc) == ("worker-added", early)
            await publisher.publish(added(late))
            assert await event_of(proc) == ("worker-added", late)
            await publisher.publish(updated(metadata("late", secure=True)))
            assert await event_of(proc) == ("worker-updated", metadata("late", secure=True))
            await publisher.publish(dropped(early))
            assert await event_of(proc) == ("worker-dropped", early)
        assert proc.returncode == 0


async def test_a_subscriber_sees_a_publisher_in_another_process(namespace: str):
    discovery = LocalDiscovery(namespace)
    async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
        async with child("publish-and-hang", namespace) as proc:
            ready = await message(proc)
            worker = WorkerMetadata.from_dict(ready["metadata"])
            assert await next_event(events) == added(worker)
            proc.send_signal(signal.SIGKILL)
            assert await next_event(events) == dropped(worker)


async def test_a_crashed_publisher_is_cleaned_up_by_the_next_attach(namespace: str):
    async with child("publish-and-hang", namespace) as proc:
        await message(proc)
        attachers, records = read_table(namespace)
        assert [a.pid for a in attachers] == [proc.pid]
        assert [r.metadata.pid for r in records] == [proc.pid]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    discovery = LocalDiscovery(namespace)
    async with discovery.publisher as publisher:
        attachers, records = read_table(namespace)
        assert [a.pid for a in attachers] == [os.getpid()]
        assert records == []
        await publisher.publish(added(metadata("fresh")))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert await next_event(events) == added(metadata("fresh"))
    # the namespace fixture checks that its files are gone


async def test_a_crashed_subscriber_is_cleaned_up_by_the_last_detach(discovery: LocalDiscovery):
    worker = metadata("w1")
    async with discovery.publisher as publisher:
        await publisher.publish(added(worker))
        async with child("subscribe-and-hang", shipped(discovery.subscriber)) as proc:
            assert WorkerMetadata.from_dict((await message(proc))["metadata"]) == worker
            attachers, _ = read_table(discovery.namespace)
            assert sorted(a.pid for a in attachers) == sorted([os.getpid(), proc.pid])
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    # leaving the publisher pruned the dead subscriber and, being last, removed the files


async def test_a_process_killed_while_holding_the_lock_releases_it(tmp_path: Path):
    path = tmp_path / "wool-x.lock"
    async with child("lock-and-hang", str(path)) as proc:
        await message(proc)
        with pytest.raises(TimeoutError):
            async with FileLock(path, timeout=0.05):
                pass
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    async with FileLock(path, timeout=EVENT_TIMEOUT):
        pass


async def test_a_dispatch_completes_while_another_process_holds_the_namespace_lock(
    namespace: str,
):
    """Waiting for the namespace lock never blocks the event loop (issue 11, item 8).

    Another process holds the lock for up to 5 s; meanwhile a publisher of this process
    waits for it, and a call to a worker the pool already knows completes before the lock
    is released (before the fix, the wait blocked the loop, so the call came after).
    """
    events: list[str] = []
    discovery = LocalDiscovery(namespace)
    async with wool.WorkerPool(size=1, discovery=discovery):
        assert await routines.add(1, 1) == 2  # the worker is known
        async with child("lock-for-5s", str(Paths.of(namespace).lock)) as holder:
            assert (await message(holder))["type"] == "ready"
            waiting = asyncio.Event()

            async def attach_a_publisher() -> None:
                waiting.set()
                async with LocalDiscovery(namespace).publisher:  # attaching takes the lock
                    events.append("publisher attached")

            attaching = asyncio.create_task(attach_a_publisher())
            await waiting.wait()
            assert await routines.add(2, 3) == 5
            events.append("dispatched")
            assert holder.stdin is not None
            holder.stdin.write(b"release\n")
            assert (await message(holder))["type"] == "released"
            async with asyncio.timeout(EVENT_TIMEOUT):
                await attaching
    assert events == ["dispatched", "publisher attached"]
