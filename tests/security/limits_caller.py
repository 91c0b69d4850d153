"""A caller process for the message size tests: ``python -m tests.security.limits_caller``.

Run with ``WOOL_MAX_MESSAGE_BYTES`` set small; the workers its pool spawns inherit it.
Prints one JSON object: for each step, ``{"ok": value}`` or ``{"error": type, "message": text}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import wool
from tests.security import routines as r
from wool._transport import max_message_bytes

SIZE = 300_000  # over a 256 KiB limit
HALF = 150_000  # under it, but two of them are over it


async def _step(action: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(30):
            return {"ok": await action()}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


async def _items(generator: Any) -> list[int]:
    return [len(item) async for item in generator]


async def _send(size: int) -> int:
    generator = r.collect()
    try:
        await anext(generator)
        return await generator.asend(b"x" * size)
    finally:
        await generator.aclose()


async def main() -> dict[str, Any]:
    report: dict[str, Any] = {"caller_limit": max_message_bytes()}
    async with wool.WorkerPool(size=1):
        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "worker_limit": r.message_limit,
            "under_limit": lambda: r.nbytes(b"x" * HALF),
            "big_argument": lambda: r.nbytes(b"x" * SIZE),
            "after_big_argument": lambda: r.add(1, 2),
            "big_result": lambda: r.blob(SIZE),
            "after_big_result": lambda: r.add(1, 2),
            "big_item": lambda: _items(r.blobs(10, SIZE)),
            "after_big_item": lambda: r.add(1, 2),
            "concurrent_arguments": lambda: asyncio.gather(
                *(r.nbytes(b"x" * HALF) for _ in range(4))
            ),
            "concurrent_results": lambda: asyncio.gather(
                *(_lengths(r.blob(HALF)) for _ in range(4))
            ),
            "big_sent_value": lambda: _send(SIZE),
            "final": lambda: r.add(2, 3),
        }
        for name, action in steps.items():
            report[name] = await _step(action)
    return report


async def _lengths(call: Awaitable[bytes]) -> int:
    return len(await call)


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
    sys.stdout.write("\n")
