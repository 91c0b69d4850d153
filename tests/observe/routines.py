"""Routines the observe tests dispatch; workers import this module by name."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

import wool
from wool._task import current_task

log = logging.getLogger("observe.routines")

request_id: wool.ContextVar[str] = wool.ContextVar("observe.request_id", default="unset")
"""A context variable with a default."""
user: wool.ContextVar[object] = wool.ContextVar("observe.user")
"""A context variable without one."""


@wool.routine
async def chatty(x: int) -> dict[str, object]:
    """Logs on two loggers and levels, with an exception; prints to stdout and stderr."""
    log.debug("debug %d", x)
    log.info("info %d", x)
    logging.getLogger("observe.other").warning("warning %d", x)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %d", x)
    print(f"out {x}")
    print(f"err {x}", file=sys.stderr)
    sys.stdout.write("part ")
    sys.stdout.write("of a line\n")
    logging.getLogger("grpc._observe").warning("grpc noise")
    await asyncio.to_thread(log.warning, "from a thread %d", x)
    task = current_task.get()  # the test compares the task id it saw
    assert task is not None
    return {"task_id": task.id, "pid": os.getpid()}


@wool.routine
async def numbered(count: int) -> int:
    """Logs ``count`` numbered records in a tight loop."""
    for i in range(count):
        log.warning("record %d", i)
    return count


@wool.routine
async def flood(count: int, size: int, fifo: str) -> int:
    """Logs ``count`` records of ``size`` characters, then tells the test through ``fifo``."""
    padding = "x" * size
    for i in range(count):
        log.warning("flood %d %s", i, padding)
        await asyncio.sleep(0)  # let the worker send what it can meanwhile
    await asyncio.to_thread(_say_done, fifo)
    return count


def _say_done(fifo: str) -> None:
    with open(fifo, "w") as done:
        done.write("done\n")


@wool.routine
async def grandchild(depth: int) -> int:
    log.warning("at depth %d", depth)
    print(f"printed at depth {depth}")
    return depth


@wool.routine
async def nest(depth: int) -> int:
    """Calls itself down to depth 0, where :func:`grandchild` logs."""
    if depth == 0:
        return await grandchild(0)
    log.warning("entering depth %d", depth)
    return await nest(depth - 1)


@wool.routine
async def stepping(count: int):
    """A generator that logs before each item."""
    for i in range(count):
        log.warning("before item %d", i)
        yield i
    log.warning("after the last item")


@wool.routine
async def worker_pid() -> int:
    return os.getpid()


@wool.routine
async def thread_count() -> int:
    return threading.active_count()


# -- context variables -------------------------------------------------------------------


@wool.routine
async def read_context() -> tuple[str, object]:
    return request_id.get(), user.get("no user")


@wool.routine
async def set_context(value: str) -> str:
    before = request_id.get()
    request_id.set(value)
    return before


@wool.routine
async def set_then_fail(value: str) -> None:
    request_id.set(value)
    raise RuntimeError("failed after setting")


@wool.routine
async def read_nested() -> tuple[str, object]:
    """The context a nested call sees, and what the nested call set."""
    seen = await read_context()
    await set_context("set by the nested call")
    return seen


@wool.routine
async def set_unpicklable() -> None:
    user.set(threading.Lock())


@wool.routine
async def context_per_step(count: int):
    """Yields what it sees in each step, and sets a value of its own each step."""
    for i in range(count):
        request_id.set(f"generator step {i}")
        yield user.get("no user")


@wool.routine
async def hold(fifo: str) -> str:
    """Runs until the test writes a line into ``fifo``."""
    return await asyncio.to_thread(_read_line, fifo)


def _read_line(fifo: str) -> str:
    with open(fifo) as source:
        return source.readline().strip()


@wool.routine
async def interleave(tag: str, count: int) -> None:
    """Prints ``count`` lines, letting other tasks on the worker print in between."""
    for i in range(count):
        print(f"{tag} {i}")
        await asyncio.sleep(0)
