"""Observing task lifecycle events without touching the routine."""

import asyncio
import sys

import wool


def show(text: str) -> None:
    # Handlers run on wool's event thread while main() prints too: one write per line
    # keeps the lines whole.
    sys.stdout.write(text + "\n")


@wool.TaskEvent.handler("task-created", "task-completed")
def on_task(event: wool.TaskEvent, timestamp: int, context=None) -> None:
    show(f"event {event.type} {event.routine} {event.task_id}")


@wool.routine
async def add(x: int, y: int) -> int:
    return x + y


async def main() -> None:
    async with wool.WorkerPool(size=2):
        show(f"add(1, 2) = {await add(1, 2)}")
    # Events still queued when the interpreter exits are delivered before it does.


if __name__ == "__main__":
    asyncio.run(main())
