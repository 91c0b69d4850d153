"""Large arguments travel once per worker: content addresses, and what each side keeps.

When a caller passes the same ``bytes`` object of at least :data:`CACHE_MIN` bytes to a
second call, it names it by its SHA-256 digest (computed once, so a payload sent once
costs no hashing). The first time a named buffer goes to a worker it is sent with its
digest, and the worker keeps it in its :class:`Store`; later calls send only the digest,
and the worker uses the buffer it kept. Both sides bound this memory by the
``argument_cache_bytes`` setting and evict the least recently used buffers first; the
caller's :class:`Holdings` mirror of a worker's store is a guess, so a worker that no
longer holds a buffer (evicted it, holds less, or restarted) answers with the digests it
lacks and the caller sends the call again with them. A buffer in use by a running call
stays alive through that call whatever the store does. Mutable buffers (``bytearray``,
writable arrays) are always sent: their content may change between calls. A worker checks
the digest of each buffer it keeps (once), since its store serves all its callers.
"""

from __future__ import annotations

import collections
import hashlib
import sys
from collections.abc import Sequence

from wool._settings import current
from wool._wire import worker_pb2 as pb

CACHE_MIN = 1_000_000
"""Smallest buffer worth a digest: below it, sending costs less than hashing and a
round trip for a lost one."""
KNOWN_OBJECTS = 64
"""Large ``bytes`` objects whose digest a caller remembers by identity."""


class Digests:
    """Digests of the large ``bytes`` objects a program sends more than once.

    A ``bytes`` object never changes, so it is recognised by identity, and its digest is
    computed once, when it is sent the second time. An object is held only until this
    cache is its last holder: each newly seen object first releases those the program
    has dropped.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[bytes, bytes]] = {}

    def digest(self, data: bytes) -> bytes:
        """The SHA-256 digest of ``data`` if it was seen before, else ``b""``."""
        entry = self._known.get(id(data))
        if entry is None or entry[0] is not data:
            self._release_dropped()
            self._known[id(data)] = (data, b"")
            return b""
        if not entry[1]:
            entry = self._known[id(data)] = (data, hashlib.sha256(data).digest())
        return entry[1]

    def _release_dropped(self) -> None:
        for key, entry in list(self._known.items()):
            # Held by the entry, by this frame's reference and by getrefcount's argument.
            if sys.getrefcount(entry[0]) <= _ONLY_THIS_CACHE:
                del self._known[key]
        while len(self._known) >= KNOWN_OBJECTS:
            del self._known[next(iter(self._known))]


_ONLY_THIS_CACHE = 3
digests = Digests()
"""This process's digests."""


def digest_of(buffer: bytes, writable: bool) -> bytes:
    """The content address of an out-of-band buffer, or ``b""`` if it is not cached."""
    if writable or len(buffer) < CACHE_MIN or type(buffer) is not bytes:
        return b""
    return digests.digest(buffer)


class _Lru:
    """Keys in least-recently-used order with their sizes, bounded by total size."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._sizes: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    def touch(self, key: bytes) -> bool:
        if key not in self._sizes:
            return False
        self._sizes.move_to_end(key)
        return True

    def add(self, key: bytes, size: int) -> list[bytes]:
        """Add ``key``; the keys evicted to make room (``key`` itself if it cannot fit)."""
        if size > self.capacity:
            return [key]
        if key in self._sizes:
            self._sizes.move_to_end(key)
            return []
        self._sizes[key] = size
        self.size += size
        evicted: list[bytes] = []
        while self.size > self.capacity:
            old, old_size = self._sizes.popitem(last=False)
            self.size -= old_size
            evicted.append(old)
        return evicted

    def discard(self, key: bytes) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self.size -= size


class Holdings:
    """What a caller believes one worker keeps (one per session; a new session starts empty)."""

    def __init__(self, capacity: int | None = None) -> None:
        self._lru = _Lru(current().argument_cache_bytes if capacity is None else capacity)

    def holds(self, digest: bytes) -> bool:
        """Whether the worker should hold ``digest`` (marks it recently used)."""
        return self._lru.touch(digest)

    def sent(self, digest: bytes, size: int) -> None:
        """The buffer ``digest`` is being sent to the worker, which will keep it."""
        self._lru.add(digest, size)

    def lost(self, digests: Sequence[bytes]) -> None:
        """The worker said it does not hold these."""
        for digest in digests:
            self._lru.discard(digest)


class Store:
    """The large arguments a worker keeps, by digest, within ``argument_cache_bytes``."""

    def __init__(self, capacity: int | None = None) -> None:
        self._lru = _Lru(current().argument_cache_bytes if capacity is None else capacity)
        self._data: dict[bytes, bytes | bytearray] = {}

    def resolve(
        self, specs: Sequence[pb.Buffer], received: Sequence[bytes | bytearray]
    ) -> tuple[list[bytes | bytearray], list[bytes]]:
        """A call's buffers from those received and those kept; and the digests it lacks.

        Received buffers that carry a digest are kept for later calls. A read-only one
        that arrived in a ``bytearray`` (a session socket reads large messages into one)
        becomes ``bytes``, once: every call then gets that very object.
        """
        buffers: list[bytes | bytearray] = []
        missing: list[bytes] = []
        arrived = iter(received)
        for spec in specs:
            if not spec.cached:
                data = next(arrived)
                if not spec.writable and type(data) is bytearray:
                    data = bytes(data)
                if spec.digest:
                    self._keep(spec.digest, data)
                buffers.append(data)
            elif self._lru.touch(spec.digest):
                buffers.append(self._data[spec.digest])
            else:
                missing.append(spec.digest)
        return buffers, missing

    def _keep(self, digest: bytes, data: bytes | bytearray) -> None:
        if self._lru.touch(digest):
            return
        # Checked, since the store serves every caller of this worker: a buffer filed
        # under a wrong digest would otherwise reach another caller's calls.
        if hashlib.sha256(data).digest() != digest:
            return
        for evicted in self._lru.add(digest, len(data)):
            self._data.pop(evicted, None)
        if self._lru.touch(digest):
            self._data[digest] = data
