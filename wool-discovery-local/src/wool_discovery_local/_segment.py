"""Attaching to a namespace's segment, and the ownership rule that cleans it up.

Every attachment (a publisher, or one iteration of a subscriber) registers in the
segment's attacher table. Attaching prunes attachers and workers whose processes are
gone, so a crashed process's leftovers are reclaimed by the next user. Detaching removes
the attachment and, if no live attachment is left, removes the segment, the notify folder
and the lock file.

A namespace that nobody will attach to again (a crashed pool's private ``pool-<random>``
namespace) is reclaimed by :func:`sweep_abandoned`, which every attach runs over the
other namespaces of its directory: those whose attachers are all dead are removed.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from wool import WorkerMetadata
from wool.plugins import open_private, private_directory
from wool_discovery_local import _notify
from wool_discovery_local._liveness import is_alive, start_time
from wool_discovery_local._lock import DEFAULT_TIMEOUT, FileLock
from wool_discovery_local._names import PREFIX, Paths
from wool_discovery_local._table import (
    ATTACHER,
    ATTACHER_CAPACITY,
    ATTACHERS_OFFSET,
    HEADER_SIZE,
    MAGIC,
    SEGMENT_SIZE,
    Record,
    Table,
)

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
    async def attach(cls, paths: Paths, *, lock_timeout: float = DEFAULT_TIMEOUT) -> Attachment:
        """Open (creating if needed) the segment of ``paths`` and register this process."""
        token = secrets.randbits(63) | 1
        pid = os.getpid()
        sweep_abandoned(paths.segment.parent, exclude=paths)
        lock = FileLock(paths.lock, lock_timeout)
        async with lock:
            fd = open_private(paths.segment, os.O_RDWR, create=True)
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
                private_directory(paths.notify)
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

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[Table]:
        """The table, under the namespace lock (waited for on the event loop)."""
        if self.closed:
            raise RuntimeError(f"{self.paths.segment} is detached")
        async with FileLock(self.paths.lock, self._lock_timeout):
            yield self._table

    def generation(self) -> int:
        """The segment's change counter, read without the lock."""
        return self._table.generation

    async def live_records(self) -> list[Record]:
        """The workers whose processes are alive, removing the others from the table."""
        async with self.locked() as table:
            dead = _prune_workers(table)
            records = table.records()
        if dead:
            self.notify()
        return records

    def notify(self) -> None:
        """Tell every subscriber of the namespace that the table changed."""
        _notify.touch(self.paths.notify)

    async def detach(self) -> None:
        """Unregister; if this was the last live attachment, remove every file. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            lock = FileLock(self.paths.lock, self._lock_timeout)
            async with lock:
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
        on_disk = os.lstat(paths.segment)
    except FileNotFoundError:
        return
    held = os.fstat(fd)
    if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
        os.unlink(paths.segment)


_SUFFIXES = (".shm", ".lock", ".d")


def sweep_abandoned(directory: Path, *, exclude: Paths | None = None) -> list[str]:
    """Remove the files of every namespace in ``directory`` that no live process uses.

    A namespace is abandoned when its segment lists no live attacher (or it has no
    segment at all, only a lock file or notify folder). Its files are removed under its
    lock, taken without waiting: a namespace whose lock is busy is in use and skipped, as
    is a segment that is not a wool-discovery-local one. Returns the namespaces removed.
    Never raises: a file that cannot be inspected or removed is left for a later sweep.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    namespaces: set[str] = set()
    for name in names:
        if not name.startswith(PREFIX):
            continue
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(PREFIX) + len(suffix):
                namespaces.add(name[len(PREFIX) : -len(suffix)])
                break
    removed: list[str] = []
    for namespace in sorted(namespaces):
        try:
            paths = Paths.of(namespace, directory)
        except ValueError:
            continue  # not a name this package would have made
        if exclude is not None and paths == exclude:
            continue
        try:
            if _sweep(paths):
                removed.append(namespace)
        except Exception as exc:  # a sweep is a courtesy; it must never break an attach
            log.debug("could not sweep %s: %r", paths.segment, exc)
    if removed:
        log.info("removed the files of abandoned namespaces %s", ", ".join(removed))
    return removed


def _sweep(paths: Paths) -> bool:
    if not _all_ours(paths) or _in_use(paths):  # the cheap checks, without the lock
        return False
    lock = FileLock(paths.lock, timeout=0)
    if not lock.try_acquire():
        return False  # someone holds it: in use
    try:
        if _in_use(paths):
            return False
        try:
            fd = open_private(paths.segment, os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            try:
                _unlink_if_same(paths, fd)
            finally:
                os.close(fd)
        shutil.rmtree(paths.notify, ignore_errors=True)
        lock.unlink()
        return True
    finally:
        lock.release()


def _all_ours(paths: Paths) -> bool:
    """Whether each file of the namespace that exists is of the expected kind and ours.

    Checked with ``lstat``, so that a FIFO, a device or a link is never opened.
    """
    me = os.geteuid()
    for path, kind in ((paths.segment, stat.S_ISREG), (paths.lock, stat.S_ISREG)):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not kind(info.st_mode) or info.st_uid != me:
            return False
    try:
        info = os.lstat(paths.notify)
    except FileNotFoundError:
        return True
    return stat.S_ISDIR(info.st_mode) and info.st_uid == me


def _in_use(paths: Paths) -> bool:
    """Whether the namespace's segment lists a live attacher, or is not ours to judge.

    A missing or blank segment (its creator crashed before writing the header) is not in
    use; a foreign file is treated as in use, so that it is never removed.
    """
    try:
        fd = open_private(paths.segment, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not a file of ours: never judged abandoned
    try:
        header = os.pread(fd, HEADER_SIZE, 0)
        if not header.strip(b"\0"):
            return False
        if not header.startswith(MAGIC) or os.fstat(fd).st_size != SEGMENT_SIZE:
            return True
        table = os.pread(fd, ATTACHER.size * ATTACHER_CAPACITY, ATTACHERS_OFFSET)
    finally:
        os.close(fd)
    return any(pid and is_alive(pid, started) for pid, started, _ in ATTACHER.iter_unpack(table))
