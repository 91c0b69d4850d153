"""Publish workers through EtcdDiscovery from a process of its own.

Usage: python -m tests.discovery_etcd._scripts.publish ENDPOINTS NAMESPACE TTL WORKERS_JSON
Prints ``"published"`` (a JSON string) once the workers are published, then keeps them
published until stdin closes (then leaves the publisher, revoking its lease) or the
process is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_etcd import EtcdDiscovery


async def main(endpoints: str, namespace: str, ttl: int, workers: list[WorkerMetadata]) -> None:
    discovery = EtcdDiscovery(namespace, endpoints=endpoints, ttl=ttl)
    async with discovery.publisher as publisher:
        for worker in workers:
            await publisher.publish(DiscoveryEvent("worker-added", worker))
        print(json.dumps("published"), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    listed = [WorkerMetadata.from_dict(d) for d in json.loads(sys.argv[4])]
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), listed))
