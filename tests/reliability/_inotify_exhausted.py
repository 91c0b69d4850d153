"""Run inside a user namespace whose inotify instance limit is 0 (see
test_long_lived_worker): a local subscriber still sees workers come and go, by rescans.

Prints one JSON line: the events seen, and whether the fallback was logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

import wool
from wool.testing import live_process, worker_metadata


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def main() -> None:
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    discovery = wool.LocalDiscovery(f"inotify-{os.getpid()}", poll_interval=0.2)
    seen: list[str] = []
    with live_process() as first_process, live_process() as second_process:
        first = worker_metadata("first", pid=first_process.pid)
        second = worker_metadata("second", pid=second_process.pid)
        async with discovery.publisher as publisher:
            await publisher.publish(wool.DiscoveryEvent("worker-added", first))
            events = aiter(discovery.subscriber)
            try:
                async with asyncio.timeout(20):
                    event = await anext(events)
                    seen.append(f"{event.type} {event.metadata.uid}")
                    await publisher.publish(wool.DiscoveryEvent("worker-added", second))
                    event = await anext(events)
                    seen.append(f"{event.type} {event.metadata.uid}")
                    await publisher.publish(wool.DiscoveryEvent("worker-dropped", first))
                    event = await anext(events)
                    seen.append(f"{event.type} {event.metadata.uid}")
            finally:
                await events.aclose()  # type: ignore[attr-defined]
    fallback = any("falling back to periodic rescans" in m for m in warnings.messages)
    print(json.dumps({"seen": seen, "fallback logged": fallback}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
