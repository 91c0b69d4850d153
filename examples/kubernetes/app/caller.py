"""The caller of the Kubernetes example: finds the worker pods of pool "demo" through the
Kubernetes API (in-cluster service account) and dispatches to them over mutual TLS."""

from __future__ import annotations

import asyncio
import os

import demo_routines

import wool

POOL = os.environ.get("WOOL_POOL", "demo")
EXPECTED = int(os.environ.get("WOOL_EXPECTED_WORKERS", "4"))
"""Workers to wait for before dispatching: 2 pods x 2 workers in workers.yaml."""


async def main() -> None:
    credentials = wool.WorkerCredentials.from_files(
        ca_path="/tls/ca.pem",
        cert_path="/tls/client-cert.pem",
        key_path="/tls/client-key.pem",
        # workers advertise their pod IPs; their certificate names them "wool-worker"
        server_name="wool-worker",
    )
    discovery = wool.KubernetesDiscovery(POOL)
    async with wool.WorkerPool(discovery=discovery, credentials=credentials) as pool:
        assert pool.proxy is not None
        await pool.proxy.wait_until(lambda workers: len(workers) >= EXPECTED, timeout=120)
        results = await asyncio.gather(*(demo_routines.square(n) for n in range(1, 9)))
    pods = sorted({pod for pod, _ in results})
    print(f"sum of squares 1..8 = {sum(value for _, value in results)}")
    print(f"computed on {len(pods)} pods: {', '.join(pods)}")


if __name__ == "__main__":
    asyncio.run(main())
