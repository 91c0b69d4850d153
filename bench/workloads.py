"""The work every backend runs: wool routines and their plain twins.

Each workload exists three times with the same body: as a ``@wool.routine`` (run by wool's
workers), as a plain async function (run by the raw gRPC baseline's servers, which
unpickle it by reference, exactly as wool's workers import routines by name), and where it
makes sense as a plain function (run by ``ProcessPoolExecutor`` through
``loop.run_in_executor``). Everything here must stay importable by name from the repository
root: worker processes import it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import wool

# --- wool routines -----------------------------------------------------------------------


@wool.routine
async def nop() -> None:
    """The trivial routine: latency, throughput, startup and event cost."""
    return None


@wool.routine
async def count_up(n: int) -> AsyncIterator[int]:
    """Yield ``0 .. n-1``: the streaming workload."""
    for i in range(n):
        yield i


@wool.routine
async def length(data: bytes) -> int:
    """Return ``len(data)``: the payload workload."""
    return len(data)


@wool.routine
async def add(a: int, b: int) -> int:
    """Return ``a + b``: the script workload's importable twin (bench/script_probe.py)."""
    return a + b


@wool.routine
async def make(n: int) -> bytes:
    """Return ``n`` zero bytes: the payload workload, result direction."""
    return bytes(n)


@wool.routine
async def fib(n: int) -> int:
    """The contract's TaskGroup Fibonacci: every call is a dispatch (fib(15): 1,973)."""
    if n <= 1:
        return n
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(fib(n - 1))
        b = tg.create_task(fib(n - 2))
    return a.result() + b.result()


@wool.routine
async def spin(seconds: float) -> float:
    """Keep the CPU (and the worker's loop) busy for ``seconds``: skewed, exponential."""
    return spin_sync(seconds)


@wool.routine
async def block(seconds: float) -> float:
    """Block the worker's event loop for ``seconds`` (a blocking call): the blocked workload."""
    time.sleep(seconds)  # noqa: ASYNC251 (blocking the loop is this workload)
    return seconds


def skewed_lengths(tasks: int, long: float, short: float) -> list[float]:
    """Task lengths alternating long and short: round-robin piles the long ones on one worker."""
    return [long if i % 2 == 0 else short for i in range(tasks)]


def exponential_lengths(tasks: int, mean: float, seed: int = 13) -> list[float]:
    """Exponentially distributed task lengths with a fixed seed."""
    draw = random.Random(seed)
    return [draw.expovariate(1 / mean) for _ in range(tasks)]


def fib_calls(n: int) -> int:
    """How many calls ``fib(n)`` makes, itself included: 2 * F(n + 1) - 1."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1


# --- plain async twins, run by the raw gRPC servers -----------------------------------------


async def nop_plain() -> None:
    return None


async def count_up_plain(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def length_plain(data: bytes) -> int:
    return len(data)


async def make_plain(n: int) -> bytes:
    return bytes(n)


# --- plain sync twins, run by ProcessPoolExecutor -------------------------------------------


def nop_sync() -> None:
    return None


def length_sync(data: bytes) -> int:
    return len(data)


def make_sync(n: int) -> bytes:
    return bytes(n)


def spin_sync(seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass
    return seconds
