"""Event cost, measured in a fresh process (a registered handler cannot be unregistered).

``python -m bench.events_probe MODE CALLS WARMUP CAP`` opens ``WorkerPool(size=2)``,
registers, in this caller process, no handler (``none``), one no-op ``task-created``
handler (``noop``) or one that sleeps 1 ms (``sleep``), runs ``WARMUP`` then ``CALLS``
sequential awaits of the trivial routine (stopping early after ``CAP`` seconds), and prints
one JSON line: ``{"p50_us", "p99_us", "calls", "capped", "handled"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import wool
from bench import workloads
from bench.stats import percentile

MODES = ("none", "noop", "sleep")
handled = 0


def register(mode: str) -> None:
    if mode == "noop":

        @wool.TaskEvent.handler("task-created")
        def noop_handler(event: wool.TaskEvent, timestamp: int, context: object = None) -> None:
            global handled
            handled += 1

    elif mode == "sleep":

        @wool.TaskEvent.handler("task-created")
        def sleep_handler(event: wool.TaskEvent, timestamp: int, context: object = None) -> None:
            global handled
            handled += 1
            time.sleep(0.001)

    elif mode != "none":
        raise SystemExit(f"unknown mode {mode!r}; expected one of {MODES}")


async def measure(calls: int, warmup: int, cap: float) -> dict[str, object]:
    async with wool.WorkerPool(size=2):
        for _ in range(warmup):
            await workloads.nop()
        samples: list[float] = []
        deadline = time.perf_counter() + cap
        for _ in range(calls):
            start = time.perf_counter()
            await workloads.nop()
            end = time.perf_counter()
            samples.append(end - start)
            if end > deadline:
                break
    samples.sort()
    return {
        "p50_us": percentile(samples, 50) * 1e6,
        "p99_us": percentile(samples, 99) * 1e6,
        "calls": len(samples),
        "capped": len(samples) < calls,
        "handled": handled,
    }


def main(argv: list[str]) -> None:
    mode, calls, warmup, cap = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    register(mode)
    result = asyncio.run(measure(calls, warmup, cap))
    if mode != "none" and not handled:
        raise SystemExit(f"the {mode} handler never ran: task-created events are not delivered")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
