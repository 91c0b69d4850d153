"""The four WorkerPool modes, all on this host.

- default: no arguments, one worker per CPU, private discovery;
- ephemeral: ``size`` workers (here tagged "gpu-capable"), private discovery;
- hybrid: ``size`` workers published through a shared ``LocalDiscovery`` namespace;
- durable: no workers of its own, it uses the ones that discovery finds (here, the
  hybrid pool's workers, so the durable pool is opened inside the hybrid one).
"""

import asyncio
import os

import wool


@wool.routine
async def where() -> int:
    """Return the process id of the worker that runs the call."""
    return os.getpid()


@wool.routine
async def gpu_task() -> str:
    return f"ran on worker {os.getpid()}"


async def main() -> None:
    print(f"caller pid: {os.getpid()}")

    async with wool.WorkerPool():
        print(f"default: ran on worker {await where()}")

    async with wool.WorkerPool("gpu-capable", size=2):
        print(f"ephemeral (tag gpu-capable): {await gpu_task()}")

    async with wool.WorkerPool(size=2, discovery=wool.LocalDiscovery("examples")):
        hybrid_pid = await where()
        print(f"hybrid: ran on worker {hybrid_pid}")

        # A durable pool spawns nothing: it finds the hybrid pool's workers through the
        # "examples" namespace of LocalDiscovery.
        async with wool.WorkerPool(discovery=wool.LocalDiscovery("examples")):
            durable_pid = await where()
            print(f"durable: ran on worker {durable_pid}")
            assert durable_pid != os.getpid()


if __name__ == "__main__":
    asyncio.run(main())
