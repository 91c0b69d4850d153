"""Attaching to a namespace's segment, and the ownership rule that cleans it up.

Every attachment (a publisher, or one iteration of a subscriber) registers in the
segment's attacher table. Attaching prunes attachers and workers whose processes are
gone, so a crashed process's leftovers are reclaimed by the next user. Detaching removes
the attachment and, if no live attachment is left, removes the segment, the notify folder
and the lock file.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import secrets
import shutil
from collections.abc import Iterator

from wool import WorkerMetadata
from wool_discovery_local import _notify
from wool_discovery_local._liveness import is_alive, start_time
from wool_discovery_local._lock import DEFAULT_TIMEOUT, FileLock
from wool_discovery_local._names import Paths
from wool_discovery_local._table import HEADER_SIZE, MAGIC, SEGMENT_SIZE, Record, Table

log = logging.getLogger(__name__)


class Attachment:
    """This process's registration in a namespace; create with :meth:`attach`."""

    def __init__(
        self, paths: Paths, fd: int, buffer: mmap.mmap, token: int, lock_timeout: float
    ) -> None:
        self.paths = paths
        self._fd = fd
        self._buf = buffer
        self._table = Table(buffer, str(paths.segment))
        self._token = token
        self._lock_timeout = lock_timeout
        self.closed = False

    @classmethod
    def attach(cls, paths: Paths, *, lock_timeout: float = DEFAULT_TIMEOUT) -> Attachment:
        """Open (creating if needed) the segment of ``paths`` and register this process."""
        token = secrets.randbits(63) | 1
        pid = os.getpid()
        lock = FileLock(paths.lock, lock_timeout)
        with lock:
            fd = os.open(paths.segment, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                buffer = _map(fd, paths)
            except BaseException:
                with contextlib.suppress(Exception):
                    if os.fstat(fd).st_size == 0:  # created by us just now: take it back
                        _unlink_if_same(paths, fd)
                        lock.unlink()
                os.close(fd)
                raise
            table = Table(buffer, str(paths.segment))
            try:
                _prune_attachers(table)
                dead = _prune_workers(table)
                paths.notify.mkdir(mode=0o700, exist_ok=True)
                table.add_attacher(pid, start_time(pid), token)
            except BaseException:
                with contextlib.suppress(Exception):
                    _remove_if_unused(table, paths, fd, lock)
                buffer.close()
                os.close(fd)
                raise
        if dead:
            _notify.touch(paths.notify)
        return cls(paths, fd, buffer, token, lock_timeout)

    @contextlib.contextmanager
    def locked(self) -> Iterator[Table]:
        """The table, under the namespace lock."""
        if self.closed:
            raise RuntimeError(f"{self.paths.segment} is detached")
        with FileLock(self.paths.lock, self._lock_timeout):
            yield self._table

    def generation(self) -> int:
        """The segment's change counter, read without the lock."""
        return self._table.generation

    def live_records(self) -> list[Record]:
        """The workers whose processes are alive, removing the others from the table."""
        with self.locked() as table:
            dead = _prune_workers(table)
            records = table.records()
        if dead:
            self.notify()
        return records

    def notify(self) -> None:
        """Tell every subscriber of the namespace that the table changed."""
        _notify.touch(self.paths.notify)

    def detach(self) -> None:
        """Unregister; if this was the last live attachment, remove every file. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            lock = FileLock(self.paths.lock, self._lock_timeout)
            with lock:
                for attacher in self._table.attachers():
                    if attacher.token == self._token:
                        self._table.remove_attacher(attacher.index)
                _prune_attachers(self._table)
                _remove_if_unused(self._table, self.paths, self._fd, lock)
        except (OSError, TimeoutError) as exc:
            log.warning("could not detach from %s cleanly: %s", self.paths.segment, exc)
        finally:
            self._buf.close()
            os.close(self._fd)


def _map(fd: int, paths: Paths) -> mmap.mmap:
    """Map the segment open on ``fd``, initialising it if it is new (or was left blank)."""
    size = os.fstat(fd).st_size
    header = os.pread(fd, HEADER_SIZE, 0)
    if not header.strip(b"\0"):
        os.ftruncate(fd, 0)
        os.ftruncate(fd, SEGMENT_SIZE)
        buffer = mmap.mmap(fd, SEGMENT_SIZE)
        Table(buffer, str(paths.segment)).initialize()
        return buffer
    if size != SEGMENT_SIZE or not header.startswith(MAGIC):
        raise RuntimeError(
            f"{paths.segment} is not a wool-discovery-local segment; "
            "remove it or use another namespace"
        )
    buffer = mmap.mmap(fd, SEGMENT_SIZE)
    try:
        Table(buffer, str(paths.segment)).check()
    except BaseException:
        buffer.close()
        raise
    return buffer


def _prune_attachers(table: Table) -> None:
    for attacher in table.attachers():
        if not is_alive(attacher.pid, attacher.started):
            log.info("removing attachment of process %d, which is gone", attacher.pid)
            table.remove_attacher(attacher.index)


def _prune_workers(table: Table) -> list[WorkerMetadata]:
    dead: list[WorkerMetadata] = []
    for record in table.records():
        if not is_alive(record.metadata.pid, record.started):
            table.free(record.slot)
            dead.append(record.metadata)
    return dead


def _remove_if_unused(table: Table, paths: Paths, fd: int, lock: FileLock) -> None:
    """With the lock held: if nothing is attached, remove the namespace's files."""
    if table.attachers():
        return
    _unlink_if_same(paths, fd)
    shutil.rmtree(paths.notify, ignore_errors=True)
    lock.unlink()


def _unlink_if_same(paths: Paths, fd: int) -> None:
    """Unlink the segment path if it still names the file open on ``fd``."""
    try:
        on_disk = os.stat(paths.segment)
    except FileNotFoundError:
        return
    held = os.fstat(fd)
    if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
        os.unlink(paths.segment)
