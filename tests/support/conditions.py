"""A bounded wait for a condition on state that offers no event to wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_TIMEOUT = 10.0


async def until(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (the failure names what never happened)
    step: float = 0.01,
) -> None:
    """Return once ``predicate()`` holds; ``AssertionError`` naming ``what`` after ``timeout`` s.

    Only for state that changes without telling anyone (a worker's reported load, a fake
    server's open watches, a log line, a count kept by a socket callback): where an event
    or a wait method exists (``CallerProxy.wait_until``, a gate), wait on that instead.
    """
    try:
        async with asyncio.timeout(timeout):
            # This state has no event to wait on: look again every ``step`` seconds.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(step)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout:g} s") from None
