"""Is a process alive, and telling the event loop the moment one exits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time)`` from ``/proc/<pid>/stat``; ``None`` if unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def start_time(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot), or 0 where that cannot be known.

    Stored next to a pid so that a pid the kernel later reuses is not taken for the
    process that once had it.
    """
    stat = _proc_stat(pid) if pid > 0 else None
    return stat[1] if stat else 0


def is_alive(pid: int, started: int = 0) -> bool:
    """Whether ``pid`` is a running process (not a zombie) that started at ``started``.

    ``started`` of 0 skips the start-time comparison.
    """
    if pid <= 0:
        return False
    if os.path.isdir("/proc/self"):
        stat = _proc_stat(pid)
        if stat is None:
            return False
        state, since = stat
        return state not in ("Z", "X", "x") and (not started or since == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExitWatch:
    """Calls ``callback`` on the event loop as soon as a watched process exits.

    Uses ``os.pidfd_open`` and ``loop.add_reader`` where available; elsewhere (or when a
    pidfd cannot be opened) it watches nothing and the caller's periodic check notices.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._fds: dict[int, int] = {}

    def watch(self, pids: Iterable[int]) -> None:
        """Watch exactly ``pids`` from now on."""
        wanted = set(pids)
        for pid in self._fds.keys() - wanted:
            self._forget(pid)
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return
        for pid in wanted - self._fds.keys():
            try:
                fd = pidfd_open(pid)
            except OSError:
                continue
            try:
                self._loop.add_reader(fd, self._fired, pid)
            except (NotImplementedError, OSError, ValueError):
                os.close(fd)
                continue
            self._fds[pid] = fd

    def close(self) -> None:
        """Stop watching and close every descriptor."""
        for pid in list(self._fds):
            self._forget(pid)

    def _fired(self, pid: int) -> None:
        fd = self._fds.get(pid)
        if fd is not None:
            self._loop.remove_reader(fd)  # level-triggered: keep the fd, stop the callbacks
        self._callback()

    def _forget(self, pid: int) -> None:
        fd = self._fds.pop(pid)
        self._loop.remove_reader(fd)
        os.close(fd)
