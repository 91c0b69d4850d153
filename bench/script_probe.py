"""Throughput of a routine defined in a script's ``__main__``, in a fresh process.

``python -m bench.script_probe WHERE TASKS CAP`` opens ``WorkerPool(size=2)`` and submits
``TASKS`` calls of ``add`` at once (like ``asyncio.gather``), after a warm-up, stopping
after ``CAP`` seconds. ``WHERE`` is ``main`` (the ``add`` below, defined in ``__main__``
as in a script or a notebook: workers get it pickled by value) or ``importable``
(``bench.workloads.add``, imported by name). It prints one JSON line:
``{"tasks_per_s", "tasks", "capped"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import wool
from bench import workloads


@wool.routine
async def add(a: int, b: int) -> int:
    """The same body as ``bench.workloads.add``, defined in ``__main__``."""
    return a + b


async def measure(routine: object, tasks: int, cap: float) -> dict[str, object]:
    async with wool.WorkerPool(size=2):
        await asyncio.gather(*(routine(i, 1) for i in range(max(100, tasks // 20))))  # type: ignore[operator]
        start = time.perf_counter()
        futures = [asyncio.ensure_future(routine(i, 1)) for i in range(tasks)]  # type: ignore[operator]
        done, pending = await asyncio.wait(futures, timeout=cap)
        elapsed = time.perf_counter() - start
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending)
        wrong = [f for f in done if f.exception() is not None]
        if wrong:
            raise SystemExit(f"{len(wrong)} calls failed, first: {wrong[0].exception()!r}")
    return {"tasks_per_s": len(done) / elapsed, "tasks": len(done), "capped": bool(pending)}


def main(argv: list[str]) -> None:
    where, tasks, cap = argv[0], int(argv[1]), float(argv[2])
    if where not in ("main", "importable"):
        raise SystemExit(f"unknown routine location {where!r}; expected main or importable")
    if where == "main" and add.__module__ != "__main__":
        raise SystemExit(
            "run me as a script (python -m bench.script_probe): add must live in __main__"
        )
    routine = add if where == "main" else workloads.add
    print(json.dumps(asyncio.run(measure(routine, tasks, cap))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
