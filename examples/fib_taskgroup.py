"""A routine that dispatches routines: a recursive Fibonacci with asyncio.TaskGroup.

Every call to ``fib`` runs on a worker, and the calls it makes go back out to the pool.
"""

import asyncio

import wool


@wool.routine
async def fib(n: int) -> int:
    if n <= 1:
        return n
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(fib(n - 1))
        b = tg.create_task(fib(n - 2))
    return a.result() + b.result()


async def main() -> None:
    async with wool.WorkerPool(size=2):
        result = await fib(12)
        print(f"fib(12) = {result}")  # 144


if __name__ == "__main__":
    asyncio.run(main())
