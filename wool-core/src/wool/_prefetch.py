"""``wool.prefetch``: a remote async generator that runs a bounded number of steps ahead."""

from __future__ import annotations

import contextvars
import dis
import functools
import inspect
import types
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

T = TypeVar("T")

read_ahead: contextvars.ContextVar[int] = contextvars.ContextVar("wool_read_ahead", default=0)
"""Set while a prefetched generator routine's call starts: how many steps it asks ahead."""


MAX_READ_AHEAD = 65_536
"""The most steps ``wool.prefetch`` may ask ahead (their requests travel in one message)."""


def prefetch(generator: AsyncGenerator[T, Any], n: int) -> AsyncGenerator[T, None]:
    """Iterate the call of a ``@wool.routine`` async generator with ``n`` items read ahead.

    ``generator`` is the call, not yet iterated (``wool.prefetch(numbers(10), 8)``);
    ``n`` is from 1 to 65,536. Its worker runs the generator up to ``n`` steps ahead of
    the consumer, and the items wait in the caller until they are taken, in order. So the
    generator's code, and its side effects, run ahead of consumption: when the consumer
    has taken ``k`` items, the generator has been asked for at most ``k + n`` (it may not
    have got that far yet). Steps are asked for half a read-ahead at a time.

    - ``asend()`` of anything but ``None`` and ``athrow()`` raise ``TypeError`` (the
      items after the current one were asked for already); the stream goes on.
    - An exception raised by the generator arrives after the items yielded before it.
    - ``aclose()``, a ``break`` out of ``async for`` followed by the generator's
      finalisation, or cancelling the consumer, cancels the step running on the worker,
      closes the worker's generator (its ``finally`` blocks run there) and drops the
      items read ahead and not taken.
    - ``wool.ContextVar`` values the consumer sets travel with the steps asked for after
      they were set, up to ``n`` items later than without read-ahead.
    """
    from wool._caller_lifecycle import is_remote_generator

    if isinstance(n, bool) or not isinstance(n, int):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
        raise TypeError(f"wool.prefetch(): n must be an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_READ_AHEAD:
        raise ValueError(f"wool.prefetch(): n must be from 1 to {MAX_READ_AHEAD:,}, got {n}")
    if not is_remote_generator(generator):
        raise TypeError(
            "wool.prefetch() takes the call of a @wool.routine async generator function, "
            f"got {generator!r}"
        )
    if not _unstarted(generator):
        raise ValueError(
            "wool.prefetch() needs a generator routine's call that was not iterated yet "
            "(wrap the call itself: wool.prefetch(routine(...), n))"
        )
    return Prefetched(generator, n)


def _unstarted(generator: Any) -> bool:
    state = getattr(inspect, "getasyncgenstate", None)
    if state is not None:  # Python 3.12+
        return state(generator) == "AGEN_CREATED"
    frame = generator.ag_frame
    if frame is None or generator.ag_running:
        return False
    # Python 3.11: a generator's frame stops before the code's first RESUME until it runs.
    return frame.f_lasti < _first_resume(generator.ag_code)


@functools.cache
def _first_resume(code: types.CodeType) -> int:
    return next(i.offset for i in dis.get_instructions(code) if i.opname == "RESUME")


class Prefetched(AsyncGenerator[T, None]):
    """A generator routine's call iterated with items read ahead (see :func:`prefetch`)."""

    __slots__ = ("_generator", "_n", "_started")

    def __init__(self, generator: AsyncGenerator[T, Any], n: int) -> None:
        self._generator = generator
        self._n = n
        self._started = False

    def __aiter__(self) -> Prefetched[T]:
        return self

    async def __anext__(self) -> T:
        if self._started:
            return await self._generator.__anext__()
        self._started = True
        token = read_ahead.set(self._n)  # read by the call as it starts, in this context
        try:
            return await self._generator.__anext__()
        finally:
            read_ahead.reset(token)

    async def asend(self, value: None) -> T:
        if value is not None:
            raise TypeError(
                "cannot send a value into a wool.prefetch() generator: its next items were "
                "asked for already (call the routine without prefetch to use asend())"
            )
        return await self.__anext__()

    async def athrow(self, *args: Any) -> T:
        raise TypeError(
            "cannot throw into a wool.prefetch() generator: its next items were asked for "
            "already (call the routine without prefetch to use athrow())"
        )

    async def aclose(self) -> None:
        await self._generator.aclose()

    def __repr__(self) -> str:
        return f"<wool.prefetch of {self._generator!r}, {self._n} ahead>"
