"""Instance, class and static methods can be routines too.

The instance (``self``) or the class (``cls``) travels to the worker with the call.
"""

import asyncio

import wool


class Calculator:
    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    @wool.routine
    async def add(self, x: int, y: int) -> int:
        return x + y + self.offset

    @classmethod
    @wool.routine
    async def name(cls) -> str:
        return cls.__name__

    @staticmethod
    @wool.routine
    async def multiply(x: int, y: int) -> int:
        return x * y


async def main() -> None:
    async with wool.WorkerPool(size=2):
        print(f"instance method: Calculator(10).add(1, 2) = {await Calculator(10).add(1, 2)}")
        print(f"class method: Calculator.name() = {await Calculator.name()}")
        print(f"static method: Calculator.multiply(6, 7) = {await Calculator.multiply(6, 7)}")


if __name__ == "__main__":
    asyncio.run(main())
