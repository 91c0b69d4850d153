"""One gRPC stream's writes, one at a time: queued frames in batches, or one frame at once.

A stream takes one write at a time. Frames queued in the outbox are written in batches
by the lane's writer task; :meth:`WriteLane.send_now` writes a frame from the caller's
own stack when nothing is queued or being written (a generator step and its item, the
streaming hot path), saving the wake-up of the writer task, and queues it otherwise.
Order is kept either way: a frame never overtakes one queued or written before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from wool import _frames

Write = Callable[[bytes], Awaitable[None]]


class WriteLane:
    """Writes the frames of one stream in order, one write in flight at most."""

    __slots__ = (
        "_busy",
        "_limit",
        "_outbox",
        "_trailer",
        "_write",
        "_writing",
        "failed",
        "given",
        "handed",
    )

    def __init__(
        self,
        outbox: asyncio.Queue[_frames.Frame | None],
        limit: int,
        write: Write,
        trailer: Callable[[], bytes] | None = None,
    ) -> None:
        self._outbox = outbox
        self._limit = limit
        self._write = write
        self._trailer = trailer
        self._writing = False
        """Whether the writer task holds a batch it has not finished writing."""
        self._busy: asyncio.Future[None] | None = None
        """Set while a frame sent at once is being written."""
        self.failed: BaseException | None = None
        """Why a write failed (the stream is then broken; its reader reports it)."""
        self.given = 0
        """Frames given through :meth:`queue` and :meth:`send_now` so far: the number of
        the latest one."""
        self.handed = 0
        """Frames handed to gRPC so far (in the order they were given)."""

    def set_limit(self, limit: int) -> None:
        """The largest batch to write (known once the peer answered)."""
        self._limit = limit

    def queue(self, frame: _frames.Frame) -> None:
        """Queue ``frame`` behind the others, for the writer task's next batch."""
        self.given += 1
        self._outbox.put_nowait(frame)

    def send_now(self, frame: bytes | _frames.Pieces) -> bool:
        """Write ``frame`` at once if the lane is idle, else queue it behind the others.

        True when it was handed to gRPC's core here (which sends it from its own
        threads, even while this thread runs something else), False when queued.
        """
        if self._writing or self._busy is not None or not self._outbox.empty():
            self.queue(frame)
            return False
        self.given += 1
        data = _frames.batch(frame, [], self._trailer() if self._trailer else b"")
        self.handed += 1
        self._busy = asyncio.get_running_loop().create_future()
        _drive(self._write(data), self._written)  # type: ignore[arg-type]
        return True

    def _written(self, error: BaseException | None) -> None:
        busy, self._busy = self._busy, None
        if error is not None and self.failed is None:
            self.failed = error
        if busy is not None and not busy.done():
            busy.set_result(None)

    @property
    def writing(self) -> bool:
        """Whether a write is in flight (gRPC has not finished sending it)."""
        return self._writing or self._busy is not None

    def _took(self, count: int) -> None:
        self.handed += count

    async def run(self, after: Callable[[], Callable[[], None] | None] | None = None) -> None:
        """Write the queued frames in batches until a ``None`` is queued (or a write fails).

        ``after()``, if given, is called as each batch is taken and returns what to call
        once it is written (or None).
        """
        async for data in _frames.batches(self._outbox, self._limit, self._trailer, self._took):
            self._writing = True
            try:
                while self._busy is not None:
                    await self._busy
                if self.failed is not None:
                    return
                written = after() if after is not None else None
                try:
                    await self._write(data)
                except Exception as exc:  # the stream broke: its reader reports why
                    self.failed = exc
                    return
                if written is not None:
                    written()
            finally:
                self._writing = False
        while self._busy is not None:  # the last frame may have been sent at once
            await self._busy


def _drive(
    coroutine: Coroutine[Any, Any, Any], done: Callable[[BaseException | None], None]
) -> None:
    """Run ``coroutine`` from here to its first suspension, then on from loop callbacks.

    Like an eagerly started task (without one): a write is handed to gRPC now, in the
    caller's stack, and nothing the caller later suffers (a cancellation) can interrupt
    it half-way. ``done(error)`` is called when it ends.
    """
    try:
        waited = coroutine.send(None)
    except StopIteration:
        done(None)
        return
    except BaseException as exc:  # the write failed: the stream is broken
        done(exc)
        return
    if asyncio.isfuture(waited):
        waited._asyncio_future_blocking = False  # pyright: ignore[reportAttributeAccessIssue]
        waited.add_done_callback(lambda _: _drive(coroutine, done))
    else:  # a bare yield (asyncio.sleep(0)): go on at the next loop iteration
        asyncio.get_running_loop().call_soon(_drive, coroutine, done)
