"""Choosing the load balancer: pass an instance, name an installed plugin, or write one."""

import asyncio
import os

import wool


@wool.routine
async def where() -> int:
    return os.getpid()


class LeastBusy:
    """A load balancer is a ranking: here, the workers with the fewest calls in flight first."""

    def order(self, task: wool.Task, candidates: list[wool.Candidate]) -> list[wool.Candidate]:
        return sorted(candidates, key=lambda candidate: candidate.in_flight)


async def main() -> None:
    async with wool.WorkerPool(size=2, loadbalancer=wool.RoundRobinLoadBalancer()):
        pids = [await where() for _ in range(4)]
        print(f"RoundRobinLoadBalancer() instance: workers {pids}")

    async with wool.WorkerPool(size=2, loadbalancer="roundrobin"):
        pids = [await where() for _ in range(4)]
        print(f'loadbalancer="roundrobin": workers {pids}')

    async with wool.WorkerPool(size=2, loadbalancer=LeastBusy()):
        pids = await asyncio.gather(*(where() for _ in range(4)))
        print(f"LeastBusy(): workers {sorted(pids)}")


if __name__ == "__main__":
    asyncio.run(main())
