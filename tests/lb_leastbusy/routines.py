"""Routines the leastbusy and concurrency tests dispatch to workers served in this process."""

from __future__ import annotations

import asyncio

import wool

GATES: dict[str, asyncio.Event] = {}
STARTED: list[str] = []
"""Labels of the ``hold`` calls, in the order they started on a worker."""


def gate(key: str) -> asyncio.Event:
    """The event named ``key`` (created on first use)."""
    return GATES.setdefault(key, asyncio.Event())


def reset() -> None:
    """Forget every gate and start record (between tests)."""
    GATES.clear()
    STARTED.clear()


@wool.routine
async def hold(release: str, label: str) -> str:
    """Start (recorded under ``label``), then wait until the gate ``release`` opens."""
    STARTED.append(label)
    gate(f"started:{label}").set()
    await gate(release).wait()
    return label


@wool.routine
async def block(seconds: float) -> float:
    """Block the worker's event loop (a blocking call) for ``seconds``."""
    import time

    time.sleep(seconds)  # noqa: ASYNC251 (it must block its worker's loop)
    return seconds
