"""A host's pool: hybrid WorkerPool publishing its workers through LanDiscovery.

Usage: python -m tests.support.lan_host ADDRESS SIZE [--tag TAG]... [--ttl SECONDS]

Run it inside a network namespace (``ip netns exec``): the workers bind ADDRESS and
advertise it, and zeroconf is pinned to the interface holding ADDRESS. Prints one JSON
line once the workers are published and the pool is ready: ``{"workers": [metadata...],
"at": <unix time>}``; keeps the pool open until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import wool


async def main(address: str, size: int, tags: list[str], ttl: int) -> None:
    discovery = wool.LanDiscovery(interfaces=[address], ttl=ttl)
    # plaintext on a test-made network namespace: the tests opt in to it explicitly
    pool = wool.WorkerPool(*tags, size=size, discovery=discovery, host=address, insecure=True)
    async with pool:
        workers = [w.metadata.to_dict() for w in pool.workers if w.metadata]
        print(json.dumps({"workers": workers, "at": time.time()}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("size", type=int)
    parser.add_argument("--tag", action="append", default=[])
    parser.add_argument("--ttl", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.address, args.size, args.tag, args.ttl))
