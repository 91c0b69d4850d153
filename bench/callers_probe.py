"""One of two callers sharing durable workers, in a process of its own.

``python -m bench.callers_probe NAMESPACE WORKERS LENGTHS_JSON`` opens
``WorkerPool(discovery=LocalDiscovery(NAMESPACE), loadbalancer="leastbusy")``, waits
until it routes to ``WORKERS`` workers, prints ``ready``, waits for a line on stdin,
sends one ``spin`` call per length at once, and prints ``done`` when all returned.
"""

from __future__ import annotations

import asyncio
import json
import sys

import wool
from bench import workloads


async def main(namespace: str, workers: int, lengths: list[float]) -> None:
    pool = wool.WorkerPool(discovery=wool.LocalDiscovery(namespace), loadbalancer="leastbusy")
    async with pool:
        assert pool.proxy is not None
        await pool.proxy.wait_until(lambda found: len(found) >= workers, timeout=30)
        # A session with each worker (so that each reports its load) before the clock starts.
        await asyncio.gather(workloads.nop(), workloads.nop())
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(workloads.spin(length) for length in lengths))
        print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
