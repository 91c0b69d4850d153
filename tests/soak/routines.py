"""The routines the soak dispatches; workers import this module by name."""

from __future__ import annotations

import asyncio

import wool


class SoakError(Exception):
    """The failure the soak injects; carries the task's number."""

    def __init__(self, number: int) -> None:
        super().__init__(f"injected failure {number}")
        self.number = number

    def __reduce__(self):
        return (SoakError, (self.number,))


@wool.routine
async def work(number: int) -> int:
    return number * 2


@wool.routine
async def fail(number: int) -> None:
    raise SoakError(number)


@wool.routine
async def stream(n: int):
    for i in range(n):
        yield i


@wool.routine
async def stream_then_fail(n: int, number: int):
    for i in range(n):
        yield i
    raise SoakError(number)


@wool.routine
async def block() -> None:
    """Waits until cancelled."""
    await asyncio.Event().wait()


@wool.routine
async def endless():
    i = 0
    while True:
        yield i
        i += 1


@wool.routine
async def yield_then_block():
    """Yields 0, then blocks in the next step until cancelled."""
    yield 0
    await asyncio.Event().wait()
    yield 1


@wool.routine
async def nested(number: int) -> int:
    """``work(number) + 1``, with ``work`` a nested call through the caller's proxy."""
    return await work(number) + 1
