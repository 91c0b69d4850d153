"""Start helper programs as separate OS processes and end them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from wool import WorkerMetadata

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def host_pool(namespace: str, size: int, *tags: str) -> AsyncIterator[list[WorkerMetadata]]:
    """A pool in another process, publishing to ``namespace``; yields its workers."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.host_pool",
        namespace,
        str(size),
        *tags,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"host pool exited with {await process.wait()}")
        yield [WorkerMetadata.from_dict(d) for d in json.loads(line)]
    finally:
        process.stdin.close()
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
