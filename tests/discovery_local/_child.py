"""A process that uses a namespace from the other side; driven by the tests.

    _child.py subscribe <base64 cloudpickled subscriber>
        print each event as a JSON line until stdin closes, then close the iterator
    _child.py publish-and-hang <namespace>
        attach a publisher, publish this process as a worker, print "ready", hang
    _child.py subscribe-and-hang <base64 cloudpickled subscriber>
        iterate until the first event, print "ready", hang with the iterator open
    _child.py lock-and-hang <lock file>
        take the lock, print "ready", hang holding it
    _child.py lock-for-5s <lock file>
        flock the file, print "ready", hold it until a line on stdin or for 5 s at most,
        release it, print "released"

The hanging modes wait for the SIGKILL that the test sends: a crashed attacher.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

import cloudpickle

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_local import LocalDiscovery
from wool_discovery_local._lock import FileLock


def say(**message: object) -> None:
    print(json.dumps(message), flush=True)


async def subscribe(blob: str) -> None:
    subscriber = cloudpickle.loads(base64.b64decode(blob))
    stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    async def pump() -> None:
        async with contextlib.aclosing(aiter(subscriber)) as events:
            async for event in events:
                say(type=event.type, metadata=event.metadata.to_dict())

    task = asyncio.create_task(pump())
    say(type="ready")
    await asyncio.wait([task, stdin_closed], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def publish_and_hang(namespace: str) -> None:
    worker = WorkerMetadata(f"child-{os.getpid()}", "127.0.0.1:1", os.getpid(), "0.16.0")
    async with LocalDiscovery(namespace).publisher as publisher:
        await publisher.publish(DiscoveryEvent("worker-added", worker))
        say(type="ready", metadata=worker.to_dict())
        await asyncio.Event().wait()


async def subscribe_and_hang(blob: str) -> None:
    subscriber = cloudpickle.loads(base64.b64decode(blob))
    events = aiter(subscriber)
    event = await anext(events)
    say(type="ready", metadata=event.metadata.to_dict())
    await asyncio.Event().wait()


async def lock_and_hang(path: str) -> None:
    async with FileLock(Path(path)):
        say(type="ready")
        await asyncio.Event().wait()


HOLD_SECONDS = 5.0


async def lock_for_5s(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    say(type="ready")
    line = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.wait([line], timeout=HOLD_SECONDS)
    os.close(fd)  # releases the flock
    say(type="released")


MODES = {
    "subscribe": subscribe,
    "publish-and-hang": publish_and_hang,
    "subscribe-and-hang": subscribe_and_hang,
    "lock-and-hang": lock_and_hang,
    "lock-for-5s": lock_for_5s,
}

if __name__ == "__main__":
    asyncio.run(MODES[sys.argv[1]](sys.argv[2]))
