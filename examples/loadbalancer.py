"""Choosing the load balancer: pass an instance, or name an installed plugin."""

import asyncio
import os

import wool


@wool.routine
async def where() -> int:
    return os.getpid()


async def main() -> None:
    async with wool.WorkerPool(size=2, loadbalancer=wool.RoundRobinLoadBalancer()):
        pids = [await where() for _ in range(4)]
        print(f"RoundRobinLoadBalancer() instance: workers {pids}")

    async with wool.WorkerPool(size=2, loadbalancer="roundrobin"):
        pids = [await where() for _ in range(4)]
        print(f'loadbalancer="roundrobin": workers {pids}')


if __name__ == "__main__":
    asyncio.run(main())
