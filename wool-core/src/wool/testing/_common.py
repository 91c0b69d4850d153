"""Helpers shared by the conformance suites."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class ConformanceError(AssertionError):
    """A plugin does not honour wool's contract; the message says which rule and how."""


def fail(message: str) -> NoReturn:
    raise ConformanceError(message)


def check(condition: object, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds (not stripped by ``python -O``)."""
    if not condition:
        fail(message)


def run(check_coroutine: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
    """Run one check in a fresh event loop, bounded by ``timeout`` seconds."""

    async def bounded() -> T:
        try:
            async with asyncio.timeout(timeout):
                return await check_coroutine
        except TimeoutError as exc:
            raise ConformanceError(f"{what}: did not finish within {timeout:g}s") from exc

    return asyncio.run(bounded())
