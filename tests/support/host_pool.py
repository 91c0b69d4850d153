"""Run a pool in its own process, as another program on the same host would.

Usage: python -m tests.support.host_pool NAMESPACE SIZE [TAG...]
Prints the workers' metadata as JSON on one line once the workers are published, then keeps
the pool open until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import wool


async def main(namespace: str, size: int, tags: list[str]) -> None:
    async with wool.WorkerPool(*tags, size=size, discovery=wool.LocalDiscovery(namespace)) as pool:
        print(json.dumps([w.metadata.to_dict() for w in pool.workers if w.metadata]), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
