"""Routines the security tests dispatch; workers import this module by name."""

from __future__ import annotations

import wool
from tests.core.routines import add, count_up, echo, fib, pid  # noqa: F401 - shared


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
async def message_limit() -> int:
    """The message size limit of the worker process that runs this."""
    from wool._settings import current

    return current().max_message_bytes


@wool.routine
async def collect():
    """A generator that receives values and yields their lengths."""
    size = 0
    while True:
        value = yield size
        size = len(value) if value is not None else 0


@wool.routine
async def add_nested(a: int, b: int) -> int:
    """``add`` dispatched from the worker that runs this: one nested call."""
    return await add(a, b)
