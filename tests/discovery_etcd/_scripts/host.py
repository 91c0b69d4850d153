"""A host's pool: a hybrid WorkerPool publishing its workers through EtcdDiscovery.

Usage: python -m tests.discovery_etcd._scripts.host ADDRESS SIZE ENDPOINTS TTL CERTS

Run it inside a network namespace: the workers bind ADDRESS and advertise it, serve
mutual TLS with ``CERTS/ca.pem``, ``CERTS/host.pem`` and ``CERTS/host-key.pem``, and are
published into the ``default`` namespace of the etcd at ENDPOINTS with a lease of TTL
seconds. Prints one JSON line once the pool is ready: ``{"workers": [metadata...]}``;
keeps the pool open until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import wool
from wool_discovery_etcd import EtcdDiscovery


async def main(address: str, size: int, endpoints: str, ttl: int, certs: Path) -> None:
    discovery = EtcdDiscovery(endpoints=endpoints, ttl=ttl)
    credentials = wool.WorkerCredentials.from_files(
        ca_path=certs / "ca.pem",
        key_path=certs / "host-key.pem",
        cert_path=certs / "host.pem",
        mutual=True,
    )
    async with wool.WorkerPool(
        size=size, discovery=discovery, host=address, credentials=credentials
    ) as pool:
        workers = [w.metadata.to_dict() for w in pool.workers if w.metadata]
        print(json.dumps({"workers": workers}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(
        main(arguments[0], int(arguments[1]), arguments[2], int(arguments[3]), Path(arguments[4]))
    )
