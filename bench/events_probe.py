"""Event cost, measured in a fresh process (a registered handler cannot be unregistered).

``python -m bench.events_probe MODE CALLS WARMUP CAP`` opens ``WorkerPool(size=2)``,
registers, in this caller process, no handler (``none``), one no-op ``task-created``
handler (``noop``) or one that sleeps 1 ms (``sleep``), or has the wool-opentelemetry
plugin registered in the caller and its workers, with no SDK configured (``otel``),
runs ``WARMUP`` then ``CALLS``
sequential awaits of the trivial routine (stopping early after ``CAP`` seconds), and prints
one JSON line: ``{"p50_us", "p99_us", "calls", "capped", "handled"}``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import wool
from bench import workloads
from bench.stats import percentile

MODES = ("none", "noop", "sleep", "otel", "uvloop")
handled = 0
OTEL_SOURCE = Path(__file__).resolve().parents[1] / "wool-opentelemetry" / "src"


def plugin_entry_point(present: bool) -> None:
    """Make the wool-opentelemetry entry point present (or absent) here and in the workers.

    A ``wool_opentelemetry`` dist-info first on the path (PYTHONPATH, which the workers
    inherit) shadows an installed one: importlib.metadata takes the first distribution
    of each name. Present, it points at this checkout's source when none is installed.
    """
    folder = Path(tempfile.mkdtemp(prefix="wool-bench-otel-"))
    atexit.register(shutil.rmtree, folder, True)
    info = folder / "wool_opentelemetry-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wool-opentelemetry\nVersion: 0\n")
    paths = [str(folder)]
    if present:
        (info / "entry_points.txt").write_text(
            "[wool.plugins]\nopentelemetry = wool_opentelemetry:plugin\n"
        )
        paths.append(str(OTEL_SOURCE))
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    names = {e.name for e in entry_points(group="wool.plugins")}
    if ("opentelemetry" in names) != present:
        raise SystemExit(f"could not make the wool-opentelemetry entry point {present=}")


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

    elif mode in ("none", "otel", "uvloop"):
        plugin_entry_point(present=mode == "otel")
    else:
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
    if mode == "uvloop" and os.environ.get("WOOL_LOOP") != "uvloop":
        raise SystemExit("the uvloop mode runs with WOOL_LOOP=uvloop")
    result = asyncio.run(measure(calls, warmup, cap))
    if mode in ("noop", "sleep") and not handled:
        raise SystemExit(f"the {mode} handler never ran: task-created events are not delivered")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
