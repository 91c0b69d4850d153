"""Own a pool in a process of its own, to be killed by a test.

Usage: python -m tests.reliability._owner NAMESPACE|- SIZE [nested] [until-signal]

Opens ``WorkerPool(size=SIZE)``, on ``LocalDiscovery(NAMESPACE)`` or (``-``) on the pool's
private namespace; with ``nested``, makes the workers dispatch nested routines (so that
they attach to the namespace too); prints ``{"namespace": ..., "workers": [...]}`` as one
JSON line; then keeps the pool open until stdin closes (with ``until-signal``: until a
signal ends the process).
"""

from __future__ import annotations

import asyncio
import json
import sys

import wool
from tests.core import routines as r


async def main(namespace: str, size: int, nested: bool, until_signal: bool) -> None:
    discovery = None if namespace == "-" else wool.LocalDiscovery(namespace)
    async with wool.WorkerPool(size=size, discovery=discovery) as pool:
        assert pool.proxy is not None
        if nested:
            assert await r.fib(5) == 5  # nested dispatch: the workers follow discovery too
        else:
            assert await r.add(2, 3) == 5
        said = {
            "namespace": pool.proxy.subscriber.namespace,
            "workers": [w.metadata.to_dict() for w in pool.workers if w.metadata],
        }
        print(json.dumps(said), flush=True)
        if until_signal:
            await asyncio.Event().wait()
        else:
            await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    words = sys.argv[3:]
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), "nested" in words, "until-signal" in words))
