"""An exception raised on a worker is re-raised in the caller with its original type."""

import asyncio

import wool


@wool.routine
async def parse(text: str) -> int:
    return int(text)


async def main() -> None:
    async with wool.WorkerPool(size=2):
        print(f"parse('42') = {await parse('42')}")
        try:
            await parse("forty-two")
        except ValueError as e:
            print(f"Task failed: {e}")


if __name__ == "__main__":
    asyncio.run(main())
