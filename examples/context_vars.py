"""A wool.ContextVar travels with each call: into the routine, and back."""

import asyncio

import wool

request_id = wool.ContextVar("example.request_id", default="none")


@wool.routine
async def handle() -> str:
    seen = request_id.get()
    request_id.set(f"{seen}, handled")
    return seen


@wool.routine
async def numbers(count: int):
    for i in range(count):
        request_id.set(f"step {i}")  # reaches the consumer with item i
        yield i


async def main() -> None:
    async with wool.WorkerPool(size=1):
        request_id.set("req-42")
        print(f"the routine saw {await handle()}")
        print(f"after the call: {request_id.get()}")
        await asyncio.create_task(handle())  # runs in a copy, as any asyncio task does
        print(f"after create_task: {request_id.get()}")
        async for i in numbers(2):
            print(f"item {i}: {request_id.get()}")


if __name__ == "__main__":
    asyncio.run(main())
