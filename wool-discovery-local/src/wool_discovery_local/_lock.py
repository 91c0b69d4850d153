"""An exclusive lock on a lock file that its last user may unlink, waited for without
blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import TracebackType

import portalocker
import portalocker.exceptions

from wool.plugins import open_private

DEFAULT_TIMEOUT = 10.0
_FIRST_BACKOFF = 0.0005
_MAX_BACKOFF = 0.01


class FileLock:
    """``flock`` on ``path`` through portalocker: ``async with lock:`` holds it.

    The lock is per open file, so a process that dies releases it with its descriptors.
    The last user of a namespace unlinks the lock file while holding it; a waiter that then
    acquires the old, unlinked file notices (the path no longer names the inode it locked)
    and starts over on the current file.

    Every attempt is non-blocking; between attempts the waiter sleeps on the event loop
    (``asyncio.sleep``, backing off up to 10 ms), so other tasks keep running while another
    process holds the lock. Waiting gives up with ``TimeoutError`` after ``timeout``
    seconds. The file is this user's own (see :func:`wool.plugins.open_private`).
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; ``False`` if another process holds it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        while True:
            fd = open_private(self.path, os.O_RDWR, create=True)
            try:
                portalocker.lock(
                    fd, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
                )
            except portalocker.exceptions.LockException:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if self._still_current(fd):
                self._fd = fd
                return True
            os.close(fd)  # locked a file that was unlinked meanwhile: start over

    async def acquire(self) -> None:
        """Wait (on the event loop) until the lock is ours, at most ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        backoff = _FIRST_BACKOFF
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"could not lock {self.path} within {self.timeout:g} s; "
                    "another process holds it"
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def release(self) -> None:
        """Release the lock (closing the last descriptor of the file releases the flock)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    async def __aenter__(self) -> FileLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def unlink(self) -> None:
        """Remove the lock file; only while holding the lock, and only if still ours."""
        if self._fd is not None and self._still_current(self._fd):
            os.unlink(self.path)

    def _still_current(self, fd: int) -> bool:
        try:
            on_disk = os.lstat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
