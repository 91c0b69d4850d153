"""A worker's load: the calls it runs and has run, its concurrency limit, and its event
loop's lag; the one source of the load reports on its batches and of its ``Stats`` answer.

A call holds one of the worker's slots while it runs. With a concurrency limit, a new
call that finds no free slot is refused as transient ("full"); a call already running
here that needs its slot back (after a nested wool call, or for a generator step) waits
for one, in arrival order, ahead of any new call. A call blocked awaiting a nested wool
call gives its slot up while it waits (see :class:`CallSlot`): the nested call may need
that very slot, so holding it would deadlock a pool whose workers all wait on children.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncGenerator
from typing import Protocol

from wool._caller_slots import Slots
from wool._wire import worker_pb2 as pb

LAG_INTERVAL = 0.05
"""Seconds between two probes of the event loop's lag: cheap (one timer), and fine enough
that a caller sees a stalled loop within a few dispatches."""
LAG_CHANGE = 0.01
"""A change of the lag, in seconds, worth a report of its own (smaller ones ride along)."""
STANDBY_CALLS = 1
"""Calls a full worker holds, not started, until a slot frees (callers send them only
when every worker is full: each saves the round trip between two calls)."""


class LoadWatcher(Protocol):
    """A session that hears of this worker's load.

    The worker pushes a report to it when a slot frees after it was told the worker was
    full, and, at each lag probe, when the running count or the lag changed since its
    last report.
    """

    told_full: bool
    last_running: int
    last_lag: float

    def push_report(self) -> None:
        """Send the current load report now, on a batch without frames if need be."""
        ...


class WorkerLoad:
    """The slots of one worker's calls, and the reports callers receive of its load."""

    def __init__(self, limit: int | None = None) -> None:
        bad = isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        if limit is not None and bad:
            raise ValueError(f"concurrency must be a positive integer or None, got {limit!r}")
        self.limit = limit
        self.running = 0
        """Calls holding a slot now (running, not parked on a nested call)."""
        self.completed = 0
        """Calls that ended here since the worker started (counted by their lifecycle)."""
        self.lag = 0.0
        """The latest delay of the lag probe beyond its due time, seconds."""
        self._slots = Slots(limit) if limit else None
        self.standing_by = 0
        """Calls held until a slot frees (see :meth:`stand_by`)."""
        self._watchers: set[LoadWatcher] = set()
        self._probe: asyncio.TimerHandle | None = None

    def watch(self, watcher: LoadWatcher) -> None:
        """Push reports to ``watcher`` (a session) from now on; starts the lag probe."""
        self._watchers.add(watcher)
        if self._probe is None:
            self._schedule_probe()

    def unwatch(self, watcher: LoadWatcher) -> None:
        """Stop pushing reports to ``watcher``."""
        self._watchers.discard(watcher)

    def close(self) -> None:
        """Stop the lag probe."""
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()

    def report(self, seen_call: int) -> pb.LoadReport:
        """The load report for a session that has read calls up to ``seen_call`` (0 for
        the ``Stats`` RPC)."""
        return pb.LoadReport(
            running=self.running,
            limit=self.limit or 0,
            lag=self.lag,
            seen_call=seen_call,
            completed=self.completed,
        )

    def try_admit(self) -> bool:
        """Take a slot for a new call if one is free and nobody waits for one."""
        if self._slots is not None and not self._slots.try_acquire():
            return False
        self.running += 1
        return True

    def may_stand_by(self) -> bool:
        """Whether a new call that found no free slot may wait here for one."""
        return self._slots is not None and self.standing_by < STANDBY_CALLS

    async def stand_by(self) -> None:
        """Take a slot for a new call sent as a standby, waiting for one (in arrival
        order with the calls taking theirs back); see :meth:`may_stand_by`."""
        self.standing_by += 1
        try:
            await self.acquire()
        finally:
            self.standing_by -= 1

    async def acquire(self) -> None:
        """Take a slot for a call that already runs here, waiting in arrival order."""
        if self._slots is not None:
            await self._slots.acquire()
        self.running += 1

    def release(self) -> None:
        """Give a slot back; tell the sessions that saw this worker full if one is free now."""
        self.running -= 1
        slots = self._slots
        if slots is None:
            return
        slots.release()
        if slots.free > 0:
            for watcher in self._watchers:
                if watcher.told_full:
                    watcher.push_report()

    def _schedule_probe(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + LAG_INTERVAL
        self._probe = loop.call_at(due, self._probed, due)

    def _probed(self, due: float) -> None:
        self.lag = max(0.0, asyncio.get_running_loop().time() - due)
        for watcher in self._watchers:
            if (
                watcher.last_running != self.running
                or abs(watcher.last_lag - self.lag) >= LAG_CHANGE
            ):
                watcher.push_report()  # other callers see load they did not cause
        if self._watchers:
            self._schedule_probe()
        else:
            self._probe = None


class CallSlot:
    """The slot of one call on a worker: held while the call runs, given up while parked.

    A call parks while it awaits a nested wool call (``async with slot.parked()``): the
    slot is released, and taken again (waiting if need be) once no nested call of this
    call is pending. Concurrent nested calls of one call (a ``TaskGroup``) share one park.
    """

    __slots__ = ("_ended", "_load", "_parked", "held")

    def __init__(self, load: WorkerLoad, *, held: bool) -> None:
        self._load = load
        self._parked = 0
        self._ended = False
        self.held = held

    def end(self) -> None:
        """The call ended: give the slot up for good (a nested call still pending later
        does not take one back)."""
        self._ended = True
        self.drop()

    async def hold(self) -> None:
        """Take the slot back (for a generator step), waiting for one if need be."""
        if not self.held:
            await self._load.acquire()
            self.held = True

    def drop(self) -> None:
        """Give the slot up (the call ended, or its generator waits for the next step)."""
        if self.held:
            self.held = False
            self._load.release()

    @contextlib.asynccontextmanager
    async def parked(self) -> AsyncGenerator[None, None]:
        """Give the slot up while the body (a nested wool call) runs."""
        self._parked += 1
        if self._parked == 1:
            self.drop()
        try:
            yield
        finally:
            self._parked -= 1
            if self._parked == 0 and not self.held and not self._ended:
                await self._load.acquire()
                if self._parked or self._ended:  # parked again, or ended, meanwhile
                    self._load.release()
                else:
                    self.held = True


_NOT_PARKED = contextlib.nullcontext()


def parked() -> contextlib.AbstractAsyncContextManager[None]:
    """Around a nested wool call: gives the slot of the call running here up meanwhile
    (does nothing outside a worker)."""
    slot = current_slot.get()
    return _NOT_PARKED if slot is None else slot.parked()


current_slot: contextvars.ContextVar[CallSlot | None] = contextvars.ContextVar(
    "wool_current_slot", default=None
)
"""The worker slot of the call whose code runs in this context (None outside workers)."""
