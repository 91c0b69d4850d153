"""The lock file and the process liveness checks, on real files and processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wool_discovery_local._liveness import is_alive, start_time
from wool_discovery_local._lock import FileLock


async def test_a_held_lock_makes_another_holder_time_out(tmp_path: Path):
    async with FileLock(tmp_path / "wool-x.lock"):
        with pytest.raises(TimeoutError, match="could not lock"):
            async with FileLock(tmp_path / "wool-x.lock", timeout=0.05):
                pass


async def test_a_lock_is_released_when_left(tmp_path: Path):
    async with FileLock(tmp_path / "wool-x.lock"):
        pass
    async with FileLock(tmp_path / "wool-x.lock", timeout=0.05):
        pass


async def test_a_lock_file_unlinked_by_its_holder_is_not_trusted(tmp_path: Path):
    path = tmp_path / "wool-x.lock"
    waiter_fd = os.open(path, os.O_RDWR | os.O_CREAT)  # a waiter that opened the old file
    try:
        holder = FileLock(path)
        async with holder:
            holder.unlink()
        assert not path.exists()
        assert not FileLock(path)._still_current(waiter_fd)
    finally:
        os.close(waiter_fd)


def test_a_waiter_ends_up_holding_the_current_lock_file(tmp_path: Path):
    path = tmp_path / "wool-x.lock"
    held = threading.Event()
    result: list[bool] = []

    async def take_lock() -> None:
        waiter = FileLock(path, timeout=10)
        async with waiter:
            assert waiter._fd is not None
            result.append(waiter._still_current(waiter._fd))

    def wait_for_lock() -> None:
        held.wait(10)
        asyncio.run(take_lock())

    thread = threading.Thread(target=wait_for_lock)
    holder = FileLock(path)
    assert holder.try_acquire()
    try:
        thread.start()
        held.set()
        holder.unlink()
    finally:
        holder.release()
    thread.join(10)
    assert result == [True]


def test_this_process_is_alive():
    assert is_alive(os.getpid(), start_time(os.getpid()))


def test_a_recorded_start_time_that_differs_means_a_reused_pid():
    assert not is_alive(os.getpid(), start_time(os.getpid()) + 1)


def test_non_positive_pids_are_never_alive():
    assert not is_alive(0)
    assert not is_alive(-1)


def test_a_killed_process_is_dead_even_before_it_is_reaped():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert is_alive(proc.pid, start_time(proc.pid))
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, still a zombie
        assert not is_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait(10)
    assert not is_alive(proc.pid)
