"""Routines the security tests dispatch; workers import this module by name."""

from __future__ import annotations

import asyncio
import os

import wool


@wool.routine
async def add(x: int, y: int) -> int:
    return x + y


@wool.routine
async def pid() -> int:
    return os.getpid()


@wool.routine
async def echo(value: object) -> object:
    return value


@wool.routine
async def nbytes(value: bytes) -> int:
    return len(value)


@wool.routine
async def blob(size: int) -> bytes:
    return b"x" * size


@wool.routine
async def blobs(*sizes: int):
    for size in sizes:
        yield b"x" * size


@wool.routine
async def count_up(n: int):
    for i in range(n):
        yield i


@wool.routine
async def fib(n: int) -> int:
    if n <= 1:
        return n
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(fib(n - 1))
        b = tg.create_task(fib(n - 2))
    return a.result() + b.result()


@wool.routine
async def message_limit() -> int:
    """The message size limit of the worker process that runs this."""
    from wool._transport import MAX_MESSAGE_BYTES

    return MAX_MESSAGE_BYTES


@wool.routine
async def collect():
    """A generator that receives values and yields their lengths."""
    size = 0
    while True:
        value = yield size
        size = len(value) if value is not None else 0
