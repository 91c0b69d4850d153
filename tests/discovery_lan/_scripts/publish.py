"""Publish workers through LanDiscovery from a process of its own.

Usage: python -m tests.discovery_lan._scripts.publish INTERFACES TTL WORKERS_JSON
Prints ``"published"`` (a JSON string) once the workers are published, then publishes
the events it reads on stdin, one JSON line each (``{"id": n, "type": "worker-updated",
"metadata": {...}}``), answering each with ``{"id": n, "ok": true}``, until stdin closes
(then it leaves the publisher, which says goodbye) or the process is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_lan import LanDiscovery


async def main(interfaces: str, ttl: int, workers: list[WorkerMetadata]) -> None:
    async with LanDiscovery(interfaces, ttl=ttl).publisher as publisher:
        for worker in workers:
            await publisher.publish(DiscoveryEvent("worker-added", worker))
        print(json.dumps("published"), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            metadata = WorkerMetadata.from_dict(request["metadata"])
            await publisher.publish(DiscoveryEvent(request["type"], metadata))
            print(json.dumps({"id": request["id"], "ok": True}), flush=True)


if __name__ == "__main__":
    listed = [WorkerMetadata.from_dict(d) for d in json.loads(sys.argv[3])]
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), listed))
