"""What a routine logs and prints on a worker shows up in the caller's logging."""

import asyncio
import logging
import sys

import wool

log = logging.getLogger("inventory")


@wool.routine
async def restock(item: str, count: int) -> int:
    log.info("restocking %d x %s", count, item)
    print(f"counted {count} {item}")  # a record of the logger wool.worker.stdout
    return count


async def main() -> None:
    # The caller's format names where each record came from; records emitted here
    # (outside any routine) have no wool_* attributes, hence the defaults.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "%(levelname)s %(name)s [%(wool_routine)s on %(wool_worker)s] %(message)s",
            defaults={"wool_routine": "-", "wool_worker": "-"},
        )
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    async with wool.WorkerPool(size=1):
        await restock("apples", 3)
    # Returned when the call returns: every record the routine emitted came before it.


if __name__ == "__main__":
    asyncio.run(main())
