"""The in-flight limit of a proxy: a FIFO counting semaphore."""

from __future__ import annotations

import asyncio
import collections


class Slots:
    """A FIFO counting semaphore whose acquire and release are O(1) with many waiters.

    (asyncio.Semaphore scans its waiters on every release: quadratic under a burst.)
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        """Slots nobody holds now."""
        return self._free

    @property
    def waiting(self) -> int:
        """Acquirers waiting for a slot now."""
        return sum(not w.done() for w in self._waiters)

    @property
    def exhausted(self) -> bool:
        """Whether an acquire would wait now."""
        return self._free == 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for one; never waits."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    def enqueue(self) -> asyncio.Future[None] | None:
        """Take a slot now (None), or the future a releaser hands one over with: await it
        with :meth:`handed`. (No coroutine per waiter: a pending call costs less.)"""
        if self._free and not self._waiters:
            self._free -= 1
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def cancelled(self, waiter: asyncio.Future[None]) -> None:
        """The acquirer awaiting ``waiter`` was cancelled: pass on a slot it was handed."""
        if waiter.done() and not waiter.cancelled():
            self.release()
        waiter.cancel()

    async def acquire(self) -> None:
        """Take a slot, waiting in FIFO order while none is free."""
        if self._free and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # a releaser hands its slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            raise

    def fail_waiters(self, error: BaseException) -> None:
        """Make every acquirer waiting now raise ``error`` (slots held stay held)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def release(self) -> None:
        """Give a slot back: to the longest waiter, or to the free count."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
