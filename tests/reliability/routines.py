"""Routines the reliability tests dispatch; workers import this module by name.

A routine that must tell the test where it runs connects to a :class:`Rendezvous` socket
(``announce``) and sends its pid: the test waits on that, never on a sleep.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import wool
from tests.core.routines import add, count_up, echo, pid  # noqa: F401 - shared


def announce(path: str) -> None:
    """Tell the test listening on the unix socket ``path`` which process this is."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(f"{os.getpid()}\n".encode())


@wool.routine
async def announce_then_wait(path: str) -> None:
    """Announces its worker, then waits (awaiting, not blocking) until cancelled."""
    announce(path)
    await asyncio.Event().wait()


@wool.routine
async def announce_then_return(path: str, seconds: float) -> int:
    """Announces its worker, works for ``seconds`` (awaiting), then returns its pid."""
    announce(path)
    await asyncio.sleep(seconds)
    return os.getpid()


@wool.routine
async def announce_then_stream(path: str):
    """Yields 0, 1, 2, ...; announces its worker before the first item."""
    announce(path)
    i = 0
    while True:
        yield i
        i += 1


@wool.routine
async def announce_then_stall(path: str):
    """Yields 0, then announces its worker and stalls in the next step."""
    yield 0
    announce(path)
    await asyncio.Event().wait()
    yield 1


@wool.routine
async def hang(path: str, seconds: float) -> None:
    """Announces its worker, then blocks the worker's event loop for ``seconds``."""
    announce(path)
    time.sleep(seconds)  # noqa: ASYNC251 (it must block its worker's loop)


# -- bad input ---------------------------------------------------------------------------


class RefusesPickling:
    """Raises in ``__reduce__``, as an object holding an OS resource may."""

    def __reduce__(self):
        raise RuntimeError("RefusesPickling refuses to be pickled")


class OnlyLoadsIn:
    """Pickles anywhere but unpickles only in a process whose WOOL_TEST_SIDE is ``side``."""

    def __init__(self, side: str) -> None:
        self.side = side

    def __reduce__(self):
        return (_rebuild, (self.side,))


def _rebuild(side: str) -> OnlyLoadsIn:
    if os.environ.get("WOOL_TEST_SIDE") != side:
        raise ValueError(f"OnlyLoadsIn cannot be rebuilt outside the {side}")
    return OnlyLoadsIn(side)


class UnpicklableError(Exception):
    """An exception that carries something that cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class ErrorRefusingPickling(Exception):
    def __reduce__(self):
        raise RuntimeError("ErrorRefusingPickling refuses to be pickled")


@wool.routine
async def size_of(data: bytes) -> int:
    return len(data)


@wool.routine
async def make_bytes(n: int) -> bytes:
    return b"r" * n


@wool.routine
async def unpicklable_result() -> object:
    return threading.Lock()


@wool.routine
async def refusing_result() -> object:
    return RefusesPickling()


@wool.routine
async def result_only_loads_in(side: str) -> object:
    return OnlyLoadsIn(side)


@wool.routine
async def raise_unpicklable() -> None:
    raise UnpicklableError("this error holds a lock")


@wool.routine
async def raise_refusing() -> None:
    raise ErrorRefusingPickling("this error refuses pickling")


@wool.routine
async def yield_unpicklable():
    yield 1
    yield threading.Lock()


@wool.routine
async def nested_add(x: int, y: int) -> int:
    """``x + y`` computed by a nested call, through the caller's proxy on the worker."""
    return await add(x, y)


@wool.routine
async def block_loop(path: str, seconds: float) -> int:
    """Announces its worker, then blocks that worker's event loop for ``seconds``."""
    announce(path)
    time.sleep(seconds)  # noqa: ASYNC251 (it must block its worker's loop)
    return os.getpid()


@wool.routine
async def mark(folder: str, key: str) -> int:
    """Appends this worker's pid to the file ``key`` in ``folder``: one line per run."""
    await asyncio.to_thread(_append_line, os.path.join(folder, key), f"{os.getpid()}\n")
    return os.getpid()


def _append_line(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line)


@wool.routine
async def sleep_blocking(seconds: float) -> None:
    """Blocks its worker's event loop for ``seconds``."""
    time.sleep(seconds)  # noqa: ASYNC251 (it must block its worker's loop)


@wool.routine
async def yield_then_block(seconds: float) -> None:
    """Lets the worker's loop turn once, then blocks it for ``seconds``."""
    await asyncio.sleep(0)
    time.sleep(seconds)  # noqa: ASYNC251 (it must block its worker's loop)
