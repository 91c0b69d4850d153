"""The event loop wool's processes run on: asyncio's own, or uvloop when asked for.

``WOOL_LOOP=uvloop`` (with ``pip install 'wool[uvloop]'``) makes ``import wool`` set
uvloop's event loop policy, so that the caller's ``asyncio.run`` and every worker that
inherits the variable (the pool's own, ``wool worker``) run on uvloop. Unset or
``asyncio``: the standard loop. uvloop is never required.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

LOOP_VARIABLE = "WOOL_LOOP"
LOOPS = ("asyncio", "uvloop")


def install_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """Set the event loop policy ``WOOL_LOOP`` asks for; return the loop's name.

    Raises ``ValueError`` for an unknown name and ``ImportError`` when uvloop is asked
    for but not installed.
    """
    environ = os.environ if environ is None else environ
    name = environ.get(LOOP_VARIABLE, "").strip().lower() or "asyncio"
    if name not in LOOPS:
        raise ValueError(f"{LOOP_VARIABLE}={name!r} is not a known event loop; use one of {LOOPS}")
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            raise ImportError(
                f"{LOOP_VARIABLE}=uvloop, but uvloop is not installed: "
                "pip install 'wool[uvloop]' (or unset the variable)"
            ) from exc
        # The policy is the one way to reach the caller's own asyncio.run before 3.12's
        # loop_factory; deprecated only from 3.14.
        policy = asyncio.get_event_loop_policy()  # pyright: ignore[reportDeprecated]
        if not isinstance(policy, uvloop.EventLoopPolicy):
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # pyright: ignore[reportDeprecated]
    return name
