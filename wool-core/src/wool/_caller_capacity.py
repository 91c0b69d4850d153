"""The caller's queue of tasks waiting for a worker with a free slot.

When every worker refused a task as full (its concurrency limit), the task waits here, in
arrival order, instead of failing. The head of the queue is woken when a worker reports
free capacity, when a call of this caller ends, or when the set of workers changes; it
then tries the workers again, and goes back to the head of the queue if they are still
full. A task that arrives while others wait queues behind them rather than overtaking.

One woken task tries at a time, and only until it has sent itself to a worker (not
until that worker accepts it: a worker busy with CPU work answers late), so the next
one may go to another worker meanwhile. A worker known to be full (its last report plus
the calls sent to it since) is not even asked, so a woken task that finds no room costs
no round trip.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

RECHECK_SECONDS = 1.0
"""How long the task at the head of the queue trusts the wake-ups before it tries the
workers anyway: a report lost with a broken session must not leave it waiting for ever.
(The others wait on: trying in their turn keeps arrival order.)"""


class CapacityQueue:
    """Tasks waiting for capacity, first come first served; one woken task tries at a time."""

    def __init__(self, may_have_capacity: Callable[[], bool]) -> None:
        self._may_have_capacity = may_have_capacity
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting = 0
        self._trying = 0

    @property
    def busy(self) -> bool:
        """Whether tasks wait (or a woken one tries): a new task must queue behind them."""
        return self._trying > 0 or self.waiting > 0

    @property
    def waiting(self) -> int:
        """Tasks waiting now (a woken one counts until it runs again)."""
        return self._waiting

    async def wait_turn(self, *, first: bool, nudge: bool = False) -> None:
        """Wait until it is this task's turn to try the workers.

        ``first``: the task waited before and found every worker full again; it waits
        at the head of the queue. Otherwise it joins the tail. The task then holds the
        turn until it calls :meth:`end_turn` (once it sent the task, or found no room).
        ``nudge``: wake the head at once if some worker may take a task now (with
        standby calls, this task joining may make a standby worth sending).
        """
        waiter = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self._waiting += 1
        if nudge:
            self.wake()
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), RECHECK_SECONDS)
                    break
                except TimeoutError:
                    if waiter.done() or not self._heads(waiter):
                        continue  # woken meanwhile, or others are ahead: they try first
                    waiter.cancel()
                    self._trying += 1  # try anyway: a wake-up may have been lost
                    break
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.end_turn()  # woken as we were cancelled: pass the turn on
            waiter.cancel()
            raise
        finally:
            self._waiting -= 1

    def _heads(self, waiter: asyncio.Future[None]) -> bool:
        """Whether ``waiter`` is the first of the queue still waiting."""
        return next((w for w in self._waiters if not w.done()), None) is waiter

    def end_turn(self) -> None:
        """The task whose turn it was sent itself to a worker, or found no room."""
        self._trying -= 1
        self.wake()

    def wake(self) -> None:
        """Let the longest-waiting task try, if none is trying and some worker may have room."""
        if self._trying or not self._waiters or not self._may_have_capacity():
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._trying += 1
                return
