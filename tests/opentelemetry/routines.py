"""Routines the tracing tests call (importable by the workers)."""

from __future__ import annotations

import asyncio
import os

import wool


@wool.routine
async def traced_add(x: int, y: int) -> int:
    return x + y


@wool.routine
async def traced_square(x: int) -> int:
    return x * x


@wool.routine
async def traced_sum_of_squares(n: int) -> int:
    """Makes ``n`` nested calls of ``traced_square`` from the worker."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(traced_square(i)) for i in range(n)]
    return sum(t.result() for t in tasks)


@wool.routine
async def traced_countdown(n: int):
    for i in range(n, 0, -1):
        yield i


class TracedFailure(Exception):
    """What traced_fail raises."""


@wool.routine
async def traced_fail(message: str) -> None:
    raise TracedFailure(message)


@wool.routine
async def traced_pid() -> int:
    return os.getpid()
