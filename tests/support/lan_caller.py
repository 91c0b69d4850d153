"""A caller host: a durable WorkerPool over LanDiscovery, driven by JSON lines on stdin.

Usage: python -m tests.support.lan_caller [--interface ADDRESS] [--discovery NAME]
           [--tag TAG]... [--wait SECONDS] [--ca FILE --cert FILE --key FILE]

Run it inside a network namespace. It opens ``WorkerPool(*tags, discovery=...)`` (with
``LanDiscovery(interfaces=[ADDRESS])``, or the discovery named by ``--discovery``), prints
``{"ready": true}``, then serves requests, each in a task of its own (so several can be
pending), answering each with one JSON line that echoes the request's ``"id"``:

- ``{"op": "wait", "uids": [...], "timeout": s}``: until those workers are routable.
- ``{"op": "wait_gone", "uids": [...], "timeout": s}``: until none of them is.
- ``{"op": "call", "routine": "pid", "args": [], "times": n, "timeout": s,
  "concurrent": false}``: call a routine of ``tests.core.routines`` n times (in a row,
  or all at once); each result is ``{"value": v}`` or ``{"error": "<type>", "message":
  "..."}``, with the seconds it took.
- ``{"op": "spawn", "routine": ..., "args": [...], "times": n}``: start n calls, wait
  until workers accepted them all (``task-scheduled``), and leave them running;
  ``{"op": "collect", "count": k, "timeout": s}``: the outcomes of the first k of them
  to finish (seconds counted from the collect request).
- ``{"op": "stall", "times": n}``: start n ``pid_then_stall`` streams, take their first
  item (the worker's pid) and keep them open.
- ``{"op": "resume", "timeout": s, "pids": [...]}``: ask the open streams that run in
  those worker processes (all when ``pids`` is omitted) for their next item, which never
  comes; reports how each ended and after how many seconds.
- ``{"op": "workers"}``: the routable workers.

Every wait is bounded by its ``timeout``; answers carry ``"ok"`` and wall-clock ``"at"``.
Closing stdin ends what is still running and leaves the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

import wool
from tests.core import routines
from wool.testing import EventRecorder


def _outcome(value: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    if error is not None:
        return {"error": type(error).__name__, "message": str(error)[:500]}
    return {"value": value}


async def _timed(awaitable: Awaitable[Any], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 (the result reports a timeout as an answer)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            outcome = _outcome(await awaitable)
    except Exception as exc:
        outcome = _outcome(error=exc)
    outcome["seconds"] = round(time.monotonic() - started, 3)
    return outcome


class Caller:
    def __init__(self, pool: wool.WorkerPool) -> None:
        assert pool.proxy is not None
        self.proxy = pool.proxy
        self.streams: list[tuple[int, AsyncGenerator[Any, Any]]] = []
        self.spawned: set[asyncio.Task[Any]] = set()

    async def wait(self, uids: list[str], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 (a command from the driving test)
        await self.proxy.wait_for(uids, timeout=timeout)
        return {}

    async def wait_gone(self, uids: list[str], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 (a command from the driving test)
        gone = set(uids)
        await self.proxy.wait_until(lambda ws: not gone & {m.uid for m in ws}, timeout)
        return {}

    async def call(
        self,
        routine: str,
        args: list[Any],
        times: int = 1,
        timeout: float = 30,  # noqa: ASYNC109 (a command from the driving test)
        concurrent: bool = False,
    ) -> dict[str, Any]:
        function = getattr(routines, routine)
        if concurrent:
            results = await asyncio.gather(
                *(_timed(function(*args), timeout) for _ in range(times))
            )
        else:
            results = [await _timed(function(*args), timeout) for _ in range(times)]
        return {"results": list(results)}

    async def spawn(self, routine: str, args: list[Any], times: int = 1) -> dict[str, Any]:
        function = getattr(routines, routine)
        loop = asyncio.get_running_loop()
        with EventRecorder("task-scheduled") as accepted:
            for _ in range(times):
                self.spawned.add(loop.create_task(function(*args)))
            # A call no worker accepted yet may still go elsewhere: the caller's requests
            # that follow (a cable pulled...) expect these to be in their workers' hands.
            await accepted.until(
                lambda events: sum(e.routine.endswith(routine) for e in events) >= times,
                timeout=30,
            )
        return {}

    async def collect(self, count: int, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 (a command from the driving test)
        started = time.monotonic()
        results = []
        pending = set(self.spawned)
        async with asyncio.timeout(timeout):
            while len(results) < count:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self.spawned.discard(task)
                    error = task.exception()
                    outcome = _outcome(None if error else task.result(), error)
                    outcome["seconds"] = round(time.monotonic() - started, 3)
                    results.append(outcome)
        return {"results": results}

    async def stall(self, times: int) -> dict[str, Any]:
        pids = []
        for _ in range(times):
            stream = routines.pid_then_stall()
            async with asyncio.timeout(30):
                pid = await anext(stream)
            pids.append(pid)
            self.streams.append((pid, stream))
        return {"pids": pids}

    async def resume(self, timeout: float, pids: list[int] | None = None) -> dict[str, Any]:  # noqa: ASYNC109 (a command from the driving test)
        chosen = [(p, s) for p, s in self.streams if pids is None or p in pids]
        self.streams = [entry for entry in self.streams if entry not in chosen]
        results = await asyncio.gather(*(_timed(anext(s), timeout) for _, s in chosen))
        return {"results": [{"pid": p, **r} for (p, _), r in zip(chosen, results, strict=True)]}

    async def workers(self) -> dict[str, Any]:
        return {"workers": [m.to_dict() for m in self.proxy.workers]}

    async def close(self) -> None:
        """End the calls and streams still open (their workers may be gone: ignore how)."""
        for task in self.spawned:
            task.cancel()
        await asyncio.gather(*self.spawned, return_exceptions=True)
        for _, stream in self.streams:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await stream.aclose()


async def serve(caller: Caller, request: dict[str, Any]) -> None:
    op = request.pop("op")
    ident = request.pop("id", None)
    try:
        reply = await getattr(caller, op)(**request)
        reply["ok"] = True
    except Exception as exc:
        reply = {"ok": False, **_outcome(error=exc)}
    reply["id"] = ident
    reply["at"] = time.time()
    print(json.dumps(reply), flush=True)


async def main(args: argparse.Namespace) -> None:
    if args.discovery is not None and (args.discovery != "lan" or args.interface is None):
        # by entry-point name, configured by the environment (WOOL_LAN_INTERFACES,
        # WOOL_ETCD_ENDPOINTS...)
        discovery: Any = args.discovery
    else:
        discovery = wool.LanDiscovery(interfaces=[args.interface])
    loop = asyncio.get_running_loop()
    credentials = None
    if args.ca:  # mutual TLS with the workers: PEM files of the CA, and the caller's cert
        credentials = wool.WorkerCredentials.from_files(
            ca_path=args.ca, key_path=args.key, cert_path=args.cert, mutual=True
        )
    async with wool.WorkerPool(
        *args.tag, discovery=discovery, wait_for_workers=args.wait, credentials=credentials
    ) as pool:
        caller = Caller(pool)
        print(json.dumps({"ready": True, "at": time.time()}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        serving: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                task = loop.create_task(serve(caller, json.loads(line)))
                serving.add(task)
                task.add_done_callback(serving.discard)
        finally:
            for task in serving:
                task.cancel()
            await asyncio.gather(*serving, return_exceptions=True)
            await caller.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interface")
    parser.add_argument("--discovery", default=None)
    parser.add_argument("--tag", action="append", default=[])
    parser.add_argument("--wait", type=float, default=30.0)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    asyncio.run(main(parser.parse_args()))
