"""An async generator routine: the worker yields values one request at a time."""

import asyncio

import wool


@wool.routine
async def fib(n: int):
    a, b = 0, 1
    for _ in range(n):
        yield a
        a, b = b, a + b


async def main() -> None:
    async with wool.WorkerPool(size=2):
        values = [value async for value in fib(10)]
        print(f"first 10 Fibonacci numbers: {values}")  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]


if __name__ == "__main__":
    asyncio.run(main())
