"""Noticing at once that a published worker's process exited (Linux pidfds)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


class ExitWatch:
    """Calls ``callback(key, pid)`` on the event loop when a watched process exits.

    Uses ``os.pidfd_open`` and ``loop.add_reader``; where they are missing, or a pidfd
    cannot be opened (no such process on this host, no permission), it watches nothing.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[str, int], None]
    ) -> None:
        self._loop = loop
        self._callback = callback
        self._watched: dict[str, tuple[int, int]] = {}  # key -> (pid, fd)

    def watch(self, key: str, pid: int) -> None:
        """Watch ``pid`` under ``key`` (replacing what ``key`` watched before)."""
        current = self._watched.get(key)
        if current is not None and current[0] == pid:
            return
        self.forget(key)
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None or pid <= 0:
            return
        try:
            fd = pidfd_open(pid)
        except OSError:
            return
        try:
            self._loop.add_reader(fd, self._fired, key, pid)
        except (NotImplementedError, OSError, ValueError):
            os.close(fd)
            return
        self._watched[key] = (pid, fd)

    def forget(self, key: str) -> None:
        """Stop watching under ``key`` and close its descriptor."""
        watched = self._watched.pop(key, None)
        if watched is not None:
            self._loop.remove_reader(watched[1])
            os.close(watched[1])

    def close(self) -> None:
        for key in list(self._watched):
            self.forget(key)

    def _fired(self, key: str, pid: int) -> None:
        self.forget(key)
        self._callback(key, pid)
