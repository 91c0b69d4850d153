"""`wool workers --watch --json` reports each worker's load while a pool works."""

import asyncio
import json
import sys
import uuid

import wool


@wool.routine
async def work(n: int) -> int:
    await asyncio.sleep(0.2)
    return n


async def main() -> None:
    namespace = f"watch-{uuid.uuid4().hex[:8]}"
    # A hybrid pool: it spawns two workers and publishes them where `wool workers` looks.
    async with wool.WorkerPool(size=2, discovery=wool.LocalDiscovery(namespace=namespace)):
        watch = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wool", "workers", "--namespace", namespace,
            "--watch", "--json", "--interval", "0.1",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert watch.stdout is not None
        results = await asyncio.gather(*(work(n) for n in range(10)))
        completed: dict[str, int] = {}
        async with asyncio.timeout(30):
            while sum(completed.values()) < len(results):
                event = json.loads(await watch.stdout.readline())
                if event["type"] == "load":
                    completed[event["uid"]] = event["completed"]
        watch.terminate()
        await watch.wait()
        print(f"{len(results)} calls completed on {len(completed)} workers")


if __name__ == "__main__":
    asyncio.run(main())
