"""Change notification: writers touch a file in the notify folder, subscribers watch it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from wool.plugins import open_private

log = logging.getLogger(__name__)

CHANGED = "changed"


class _FolderGoneFilter(logging.Filter):
    """Drops watchdog's ERROR about events after its thread stopped.

    A namespace's last user removes the notify folder by design; a watcher in another
    process then sees the folder vanish and watchdog logs this as an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_FolderGoneFilter())
_QUIET = frozenset({"opened", "closed_no_write"})


def touch(folder: Path) -> None:
    """Signal a change to the watchers of ``folder`` (a no-op if it is gone).

    The file is written in place, never followed through a link nor truncated (see
    :func:`wool.plugins.open_private`).
    """
    try:
        fd = open_private(folder / CHANGED, os.O_WRONLY, create=True)
    except FileNotFoundError:
        return
    try:
        os.pwrite(fd, b"\n", 0)
    finally:
        os.close(fd)


class _Bridge(FileSystemEventHandler):
    """Runs on watchdog's thread; hands each event to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _QUIET:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(self._callback)


class Watch:
    """A watchdog observer on a notify folder, calling ``callback`` on ``loop`` per change.

    If the folder cannot be watched (say the inotify limits are reached) a warning is
    logged and the caller's periodic rescan is all there is.
    """

    def __init__(
        self, folder: Path, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> None:
        self._observer: BaseObserver | None = None
        try:
            # Creating the observer may already fail (EMFILE: the per-user inotify limit).
            self._observer = Observer()
            self._observer.schedule(_Bridge(loop, callback), str(folder), recursive=False)
            self._observer.start()
        except OSError as exc:
            log.warning("cannot watch %s (%s); falling back to periodic rescans", folder, exc)
            self.close()

    def close(self) -> None:
        """Stop and join the observer thread, releasing its inotify descriptor."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        if observer.is_alive():
            observer.stop()
            observer.join()
        else:
            with contextlib.suppress(Exception):
                observer.unschedule_all()
