"""Nothing of a namespace is left once everybody has left, however they left; and a
corrupt record is skipped, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import stat
import struct
import zlib

import pytest

from tests.discovery_local.conftest import added, leftovers, metadata, next_event, read_table
from wool_discovery_local import LocalDiscovery
from wool_discovery_local._names import Paths
from wool_discovery_local._table import SEGMENT_SIZE, SLOT_HEADER, SLOT_SIZE, SLOTS_OFFSET


class Boom(Exception):
    pass


async def test_the_files_exist_while_attached_and_go_after_a_normal_exit(
    discovery: LocalDiscovery, namespace: str
):
    paths = Paths.of(namespace)
    async with discovery.publisher as publisher:
        assert paths.segment.is_file() and paths.lock.is_file() and paths.notify.is_dir()
        await publisher.publish(added(metadata("w1")))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            await next_event(events)
        assert leftovers(namespace) != []
    assert leftovers(namespace) == []


async def test_a_subscriber_alone_cleans_up_after_itself(discovery: LocalDiscovery, namespace):
    events = aiter(discovery.subscriber)
    waiting = asyncio.ensure_future(anext(events))
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("w1")))
        async with asyncio.timeout(10):
            assert await waiting == added(metadata("w1"))
    await events.aclose()
    assert leftovers(namespace) == []


async def test_nothing_is_left_after_an_exception(discovery: LocalDiscovery, namespace: str):
    with pytest.raises(Boom):
        async with discovery.publisher as publisher:
            await publisher.publish(added(metadata("w1")))
            async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
                async for _ in events:
                    raise Boom
    assert leftovers(namespace) == []


async def test_nothing_is_left_after_a_cancellation(discovery: LocalDiscovery, namespace: str):
    subscribed, published = asyncio.Event(), asyncio.Event()

    async def subscribe() -> None:
        async for _ in discovery.subscriber:
            subscribed.set()

    async def publish() -> None:
        async with discovery.publisher as publisher:
            await publisher.publish(added(metadata("w1")))
            published.set()
            await asyncio.Event().wait()

    tasks = [asyncio.ensure_future(publish()), asyncio.ensure_future(subscribe())]
    async with asyncio.timeout(10):
        await published.wait()
        await subscribed.wait()
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert leftovers(namespace) == []


async def test_a_never_started_iteration_holds_nothing(discovery: LocalDiscovery, namespace):
    events = aiter(discovery.subscriber)
    assert leftovers(namespace) == []
    await events.aclose()


def corrupt(namespace: str, slot: int, how: str) -> None:
    """Damage the record in ``slot`` in place, as a stray write or a crash would."""
    with open(Paths.of(namespace).segment, "r+b") as f, mmap.mmap(f.fileno(), SEGMENT_SIZE) as m:
        offset = SLOTS_OFFSET + slot * SLOT_SIZE
        payload = offset + SLOT_HEADER.size
        if how == "checksum":
            m[payload] ^= 0xFF
        elif how == "json":  # a valid checksum over bytes that are not a worker record
            junk = b'{"uid": 1'
            m[payload : payload + len(junk)] = junk
            state, _, _, reserved, started, seq = SLOT_HEADER.unpack_from(m, offset)
            crc = zlib.crc32(junk)
            SLOT_HEADER.pack_into(m, offset, state, len(junk), crc, reserved, started, seq)
        elif how == "state":
            struct.pack_into("<I", m, offset, 7)


@pytest.mark.parametrize("how", ["checksum", "json", "state"])
async def test_a_corrupt_record_is_skipped_with_a_warning(
    discovery: LocalDiscovery, namespace: str, how: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="wool_discovery_local")
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("bad")))
        await publisher.publish(added(metadata("good")))
        _, records = read_table(namespace)
        corrupt(namespace, next(r.slot for r in records if r.metadata.uid == "bad"), how)
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert await next_event(events) == added(metadata("good"))
            await publisher.publish(added(metadata("after")))
            assert await next_event(events) == added(metadata("after"))
    warnings = [r for r in caplog.records if "corrupt worker record" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


async def test_a_segment_of_another_layout_is_refused_not_overwritten(namespace: str):
    paths = Paths.of(namespace)
    paths.segment.write_bytes(b"not a wool segment".ljust(64, b"\0"))
    try:
        with pytest.raises(RuntimeError, match="not a wool-discovery-local segment"):
            async with LocalDiscovery(namespace).publisher:
                pass
        assert paths.segment.read_bytes().startswith(b"not a wool segment")
    finally:
        paths.segment.unlink()
        paths.lock.unlink(missing_ok=True)


async def test_a_blank_segment_left_by_a_crashed_creator_is_reinitialised(namespace: str):
    paths = Paths.of(namespace)
    paths.segment.write_bytes(b"")
    discovery = LocalDiscovery(namespace)
    async with discovery.publisher as publisher:
        await publisher.publish(added(metadata("w1")))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            assert await next_event(events) == added(metadata("w1"))


@pytest.mark.parametrize("suffix", [".shm", ".lock"])
async def test_the_sweep_leaves_a_fifo_alone_and_attaching_goes_on(
    discovery: LocalDiscovery, namespace: str, suffix: str
):
    """A FIFO named like a namespace file is never opened (a blocking open would hang)."""
    fifo = Paths.of(namespace).segment.with_name(f"wool-fifo-{namespace}{suffix}")
    os.mkfifo(fifo, 0o600)
    try:
        async with discovery.publisher as publisher:
            await publisher.publish(added(metadata("w1")))
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    finally:
        fifo.unlink()


async def test_a_namespace_folder_of_the_wrong_kind_is_refused(namespace: str):
    """A notify "folder" that is a symbolic link is not followed: attaching fails, clearly."""
    paths = Paths.of(namespace)
    paths.notify.symlink_to(paths.notify.parent)
    try:
        with pytest.raises(PermissionError, match="is a symbolic link"):
            async with LocalDiscovery(namespace).publisher:
                pass
    finally:
        paths.notify.unlink()
    assert not paths.segment.exists() and not paths.lock.exists()
