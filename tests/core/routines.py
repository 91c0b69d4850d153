"""Routines the core tests dispatch; workers import this module by name."""

from __future__ import annotations

import asyncio
import os

import wool

# Worker-side state, for tests that run a pool of one worker and then ask it questions.
FINALLY_RAN: dict[str, asyncio.Event] = {}


def _event(key: str) -> asyncio.Event:
    return FINALLY_RAN.setdefault(key, asyncio.Event())


@wool.routine
async def add(x: int, y: int) -> int:
    return x + y


@wool.routine
async def pid() -> int:
    return os.getpid()


@wool.routine
async def echo(value: object) -> object:
    return value


@wool.routine
async def count_up(n: int):
    for i in range(n):
        yield i


@wool.routine
async def accumulator(key: str):
    """Yields the running total of the values sent in; records its finally."""
    total = 0
    try:
        while True:
            try:
                value = yield total
            except ValueError as exc:
                total = -1
                value = yield f"recovered from {exc}"
            if value is not None:
                total += value
    finally:
        _event(key).set()


@wool.routine
async def endless(key: str):
    """Yields forever; records when its finally runs."""
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        _event(key).set()


@wool.routine
async def wait_forever(key: str, started: str) -> None:
    """Blocks until cancelled; records its start and its finally."""
    _event(started).set()
    try:
        await asyncio.Event().wait()
    finally:
        _event(key).set()


@wool.routine
async def finally_ran(key: str, timeout: float = 10.0) -> bool:  # noqa: ASYNC109 (runs on the worker: the answer is whether it ran within it)
    """On the worker: wait until the finally recorded under ``key`` ran."""
    try:
        async with asyncio.timeout(timeout):
            await _event(key).wait()
    except TimeoutError:
        return False
    return True


_RUNNING = [0, 0]  # calls of running_peak running now, and the most seen at once


@wool.routine
async def running_peak(hold: float) -> int:
    """On the worker: how many calls of this routine ran at once, at most, so far."""
    _RUNNING[0] += 1
    _RUNNING[1] = max(_RUNNING)
    try:
        await asyncio.sleep(hold)  # the call's work: overlaps others unless a limit forbids
    finally:
        _RUNNING[0] -= 1
    return _RUNNING[1]


@wool.routine
async def fib(n: int) -> int:
    if n <= 1:
        return n
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(fib(n - 1))
        b = tg.create_task(fib(n - 2))
    return a.result() + b.result()


@wool.routine
async def fib_traced(n: int) -> tuple[int, int, frozenset[int]]:
    """fib(n), the number of routine calls it took, and the pids they ran in."""
    from wool._task import current_task

    assert current_task.get() is not None, "not running as a dispatched task"
    if n <= 1:
        return n, 1, frozenset({os.getpid()})
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(fib_traced(n - 1))
        b = tg.create_task(fib_traced(n - 2))
    (va, ca, pa), (vb, cb, pb) = a.result(), b.result()
    return va + vb, ca + cb + 1, pa | pb | {os.getpid()}


class Calculator:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    @wool.routine
    async def add(self, x: int) -> int:
        return self.offset + x

    @classmethod
    @wool.routine
    async def make(cls, offset: int) -> Calculator:
        return cls(offset)

    @wool.routine
    @classmethod
    async def name(cls) -> str:
        return cls.__name__

    @staticmethod
    @wool.routine
    async def double(x: int) -> int:
        return 2 * x

    @wool.routine
    @staticmethod
    async def triple(x: int) -> int:
        return 3 * x


class CustomError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"custom failure {code}")
        self.code = code


def _inner_failure() -> None:
    raise KeyError("inner")


@wool.routine
async def fail_with(kind: str) -> None:
    if kind == "value":
        raise ValueError("bad value")
    if kind == "custom":
        raise CustomError(7)
    if kind == "chained":
        try:
            _inner_failure()
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    if kind == "unpicklable":
        error = RuntimeError("carries a lock")
        error.lock = __import__("threading").Lock()  # type: ignore[attr-defined]
        raise error


@wool.routine
async def unpicklable_result() -> object:
    import threading

    return threading.Lock()


@wool.routine
async def stream_then_fail(n: int):
    for i in range(n):
        yield i
    raise ValueError(f"failed after {n}")


@wool.routine
async def stalls_on_second_step(key: str, started: str):
    """Yields once, then blocks in its next step until cancelled."""
    try:
        yield 0
        _event(started).set()
        await asyncio.Event().wait()
        yield 1
    finally:
        _event(key).set()


@wool.routine
async def pid_then_stall():
    """Yields its worker's pid, then blocks in the next step."""
    yield os.getpid()
    await asyncio.Event().wait()
    yield None


STEPS: dict[str, int] = {}
"""Steps each ``counted`` generator began, by key (worker-side)."""
_STEPPED: dict[str, asyncio.Event] = {}


@wool.routine
async def counted(key: str):
    """Yields 0, 1, 2 ... forever, counting on its worker each step it begins."""
    try:
        i = 0
        while True:
            STEPS[key] = STEPS.get(key, 0) + 1
            _STEPPED.pop(key, asyncio.Event()).set()
            yield i
            i += 1
    finally:
        _event(key).set()


@wool.routine
async def steps_begun(key: str, at_least: int = 0, timeout: float = 10.0) -> int:  # noqa: ASYNC109 (runs on the worker: the caller cannot cancel it there)
    """On the worker: the steps ``counted(key)`` began, once there are ``at_least``."""
    async with asyncio.timeout(timeout):
        while STEPS.get(key, 0) < at_least:
            await _STEPPED.setdefault(key, asyncio.Event()).wait()
    return STEPS.get(key, 0)


@wool.routine
async def sum_prefetched(n: int, depth: int) -> int:
    """On a worker: consume another generator routine through wool.prefetch."""
    return sum([i async for i in wool.prefetch(count_up(n), depth)])
