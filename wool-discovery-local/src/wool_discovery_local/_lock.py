"""An exclusive, bounded-wait lock on a lock file that its last user may unlink."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

import portalocker
import portalocker.exceptions

DEFAULT_TIMEOUT = 10.0
_FIRST_BACKOFF = 0.0005
_MAX_BACKOFF = 0.01


class FileLock:
    """``flock`` on ``path`` through portalocker, held for a ``with`` block.

    The lock is per open file, so a process that dies releases it with its descriptors.
    The last user of a namespace unlinks the lock file while holding it; a waiter that then
    acquires the old, unlinked file notices (the path no longer names the inode it locked)
    and starts over on the current file. Waiting gives up with ``TimeoutError`` after
    ``timeout`` seconds.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        deadline = time.monotonic() + self.timeout
        backoff = _FIRST_BACKOFF
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        portalocker.lock(
                            fd, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
                        )
                        break
                    except portalocker.exceptions.LockException:
                        if time.monotonic() >= deadline:
                            raise TimeoutError(
                                f"could not lock {self.path} within {self.timeout:g} s; "
                                "another process holds it"
                            ) from None
                        time.sleep(backoff)
                        backoff = min(backoff * 2, _MAX_BACKOFF)
                if self._still_current(fd):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # locked a file that was unlinked meanwhile: start over

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the file releases the flock

    def unlink(self) -> None:
        """Remove the lock file; only while holding the lock, and only if still ours."""
        if self._fd is not None and self._still_current(self._fd):
            os.unlink(self.path)

    def _still_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
