"""Many calls pending at once, in a fresh process: throughput and the caller's memory.

``python -m bench.scale_probe BACKEND CALLS CAP`` submits ``CALLS`` trivial calls at once
(like ``asyncio.gather``) to ``wool.WorkerPool(size=2)`` (``wool``) or to
``ProcessPoolExecutor(2)`` through ``run_in_executor`` (``ppe``), stopping after ``CAP``
seconds, and prints one JSON line: ``{"tasks_per_s", "tasks", "capped",
"kb_per_call"}``, where ``kb_per_call`` is the growth of this process's resident memory
over the run (its highest value, sampled every 10 ms, less the value before), divided by
the calls submitted.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import wool
from bench import workloads

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_KB


class PeakRss:
    """The highest resident memory seen while running (ru_maxrss lags on some kernels)."""

    def __init__(self) -> None:
        self.peak = _rss_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_kb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_kb())


async def _burst(make: Callable[[], Awaitable[Any]], calls: int, cap: float) -> dict[str, Any]:
    await asyncio.gather(*(make() for _ in range(200)))  # warm
    before = _rss_kb()
    with PeakRss() as rss:
        start = time.perf_counter()
        futures = [asyncio.ensure_future(make()) for _ in range(calls)]
        done, pending = await asyncio.wait(futures, timeout=cap)
        elapsed = time.perf_counter() - start
    grown = rss.peak - before
    for future in pending:
        future.cancel()
    if pending:
        await asyncio.wait(pending)
    failed = [f for f in done if f.exception() is not None]
    if failed:
        raise SystemExit(f"{len(failed)} calls failed, first: {failed[0].exception()!r}")
    return {
        "tasks_per_s": len(done) / elapsed,
        "tasks": len(done),
        "capped": bool(pending),
        "kb_per_call": grown / calls,
    }


async def measure(backend: str, calls: int, cap: float) -> dict[str, Any]:
    if backend == "wool":
        async with wool.WorkerPool(size=2):
            return await _burst(workloads.nop, calls, cap)
    executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    try:
        loop = asyncio.get_running_loop()
        return await _burst(lambda: loop.run_in_executor(executor, workloads.nop_sync), calls, cap)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def main(argv: list[str]) -> None:
    backend, calls, cap = argv[0], int(argv[1]), float(argv[2])
    if backend not in ("wool", "ppe"):
        raise SystemExit(f"unknown backend {backend!r}; expected wool or ppe")
    print(json.dumps(asyncio.run(measure(backend, calls, cap))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
