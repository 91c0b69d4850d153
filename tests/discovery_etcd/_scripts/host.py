"""A host's pool: a hybrid WorkerPool publishing its workers through EtcdDiscovery.

Usage: python -m tests.discovery_etcd._scripts.host ADDRESS SIZE ENDPOINTS TTL

Run it inside a network namespace: the workers bind ADDRESS and advertise it, and are
published into the ``default`` namespace of the etcd at ENDPOINTS with a lease of TTL
seconds. Prints one JSON line once the pool is ready: ``{"workers": [metadata...]}``;
keeps the pool open until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import wool
from wool_discovery_etcd import EtcdDiscovery


async def main(address: str, size: int, endpoints: str, ttl: int) -> None:
    discovery = EtcdDiscovery(endpoints=endpoints, ttl=ttl)
    async with wool.WorkerPool(size=size, discovery=discovery, host=address) as pool:
        workers = [w.metadata.to_dict() for w in pool.workers if w.metadata]
        print(json.dumps({"workers": workers}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
