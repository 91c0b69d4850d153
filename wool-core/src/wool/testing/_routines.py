"""Routines the conformance kit dispatches to its in-process workers."""

from __future__ import annotations

from wool._routine import routine


class KitError(Exception):
    """What :func:`fail` raises: a routine's own error, never a worker fault."""


@routine
async def add(x: int, y: int) -> int:
    return x + y


@routine
async def fail(message: str) -> None:
    raise KitError(message)


@routine
async def nested_add(x: int, y: int) -> int:
    """Dispatches :func:`add` from the worker, through the proxy the task carried."""
    return await add(x, y)
