"""LocalDiscovery faults seen by pools: a lock holder that dies, a corrupt record, and the
files of namespaces that crashed processes abandoned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import uuid

import pytest

import wool
from tests.discovery_local.conftest import CHILD, child_env, read_table
from tests.discovery_local.test_cleanup import corrupt
from tests.reliability import routines as r
from tests.reliability.support import namespace_files
from wool_discovery_local._names import Paths, base_directory
from wool_discovery_local._segment import Attachment, sweep_abandoned

BOUND = 15.0


def fresh_namespace() -> str:
    return f"rel-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def lock_holder(namespace: str):
    """A process that takes the namespace's lock and hangs holding it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        "lock-and-hang",
        str(Paths.of(namespace).lock),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(BOUND):
            assert b"ready" in await proc.stdout.readline()
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_pool_waits_a_bounded_time_for_a_held_lock_and_proceeds_once_its_holder_dies():
    namespace = fresh_namespace()
    async with lock_holder(namespace) as holder:
        discovery = wool.LocalDiscovery(namespace, lock_timeout=0.3)
        async with asyncio.timeout(BOUND):
            with pytest.raises(TimeoutError, match=r"could not lock .*\.lock"):
                async with wool.WorkerPool(size=1, discovery=discovery):
                    pass
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel releases it
        await holder.wait()
        async with asyncio.timeout(BOUND * 4):
            async with wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(namespace)):
                assert await r.add(1, 2) == 3
    assert namespace_files(namespace) == []


async def test_a_corrupt_worker_record_is_skipped_with_a_warning_and_the_pool_serves(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="wool_discovery_local")
    namespace = fresh_namespace()
    async with wool.WorkerPool(size=2, discovery=wool.LocalDiscovery(namespace)):
        _, records = read_table(namespace)
        assert len(records) == 2
        damaged, intact = records
        corrupt(namespace, damaged.slot, "checksum")
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([intact.metadata.uid], timeout=BOUND)
            assert {m.uid for m in pool.proxy.workers} == {intact.metadata.uid}
            assert {await r.pid() for _ in range(4)} == {intact.metadata.pid}
    warnings = [rec for rec in caplog.records if "corrupt worker record" in rec.getMessage()]
    assert warnings and all(w.levelno == logging.WARNING for w in warnings)


# -- abandoned namespaces ----------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def abandon(namespace: str, pid: int) -> Paths:
    """Leave ``namespace``'s files as a process ``pid`` that crashed while attached would."""
    paths = Paths.of(namespace)
    attachment = await Attachment.attach(paths)
    async with attachment.locked() as table:
        for attacher in table.attachers():
            table.remove_attacher(attacher.index)
        table.add_attacher(pid, 1, 12345)
    attachment._buf.close()  # vanish without detaching, like a SIGKILL
    os.close(attachment._fd)
    assert all(p.exists() for p in (paths.segment, paths.lock, paths.notify))
    return paths


async def test_a_namespace_whose_attachers_are_all_dead_is_swept():
    paths = await abandon(fresh_namespace(), dead_pid())
    sweep_abandoned(base_directory())
    assert not any(p.exists() for p in (paths.segment, paths.lock, paths.notify))


async def test_a_namespace_with_a_live_attacher_is_kept():
    namespace = fresh_namespace()
    attachment = await Attachment.attach(Paths.of(namespace))
    try:
        assert namespace not in sweep_abandoned(base_directory())
        assert Paths.of(namespace).segment.exists()
    finally:
        await attachment.detach()
    assert namespace_files(namespace) == []


async def test_a_namespace_whose_lock_is_held_is_kept():
    from wool_discovery_local._lock import FileLock

    paths = await abandon(fresh_namespace(), dead_pid())
    async with FileLock(paths.lock):
        sweep_abandoned(base_directory())
        assert paths.segment.exists()
    sweep_abandoned(base_directory())
    assert not paths.segment.exists()


@pytest.mark.parametrize("leftover", ["lock", "notify", "blank-segment"])
def test_stray_files_of_a_namespace_are_swept(leftover: str):
    paths = Paths.of(fresh_namespace())
    if leftover == "lock":
        paths.lock.touch()
    elif leftover == "notify":
        paths.notify.mkdir()
        (paths.notify / "changed").touch()
    else:
        paths.segment.write_bytes(b"")
    sweep_abandoned(base_directory())
    assert not any(p.exists() for p in (paths.segment, paths.lock, paths.notify))


def test_a_file_that_is_not_a_segment_is_never_swept():
    paths = Paths.of(fresh_namespace())
    paths.segment.write_bytes(b"somebody else's data".ljust(64, b"\0"))
    try:
        sweep_abandoned(base_directory())
        assert paths.segment.read_bytes().startswith(b"somebody else's data")
    finally:
        paths.segment.unlink()
        paths.lock.unlink(missing_ok=True)


def test_files_that_are_not_wool_namespaces_are_ignored():
    stray = [base_directory() / name for name in ("wool-.shm", "other.shm", "wool-a b.lock")]
    for path in stray:
        path.touch()
    try:
        sweep_abandoned(base_directory())
        assert all(path.exists() for path in stray)
    finally:
        for path in stray:
            path.unlink()


async def test_attaching_sweeps_the_other_abandoned_namespaces():
    abandoned = await abandon(fresh_namespace(), dead_pid())
    namespace = fresh_namespace()
    attachment = await Attachment.attach(Paths.of(namespace))
    await attachment.detach()
    assert not abandoned.segment.exists() and namespace_files(namespace) == []
