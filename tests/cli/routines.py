"""Routines the CLI tests send to workers that `wool worker` runs; imported by name."""

from __future__ import annotations

import asyncio
import os

import wool


@wool.routine
async def slow(port: int, seconds: float) -> int:
    """Tell the test on ``127.0.0.1:port`` that it started, then take ``seconds``."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"started\n")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(seconds)
    return os.getpid()
