"""Routines and types of the payload tests; workers import this module by name."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import wool


class Blob:
    """Memory that pickles out of band under protocol 5 (as a NumPy array does)."""

    def __init__(self, data: bytearray) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        if protocol >= 5:
            return _blob, (pickle.PickleBuffer(self.data),)
        return _blob, (bytes(self.data),)


def _blob(buffer: Any) -> Blob:
    view = memoryview(buffer)
    return Blob(view.obj if isinstance(view.obj, bytearray) else bytearray(view))


def fingerprint(value: Any) -> tuple[str, int, str, bool]:
    """The kind, size, content digest and writability of a bytes-like value."""
    if isinstance(value, Blob):
        value = value.data
    view = memoryview(value)
    return type(value).__name__, view.nbytes, hashlib.sha256(view).hexdigest(), not view.readonly


@wool.routine
async def describe(value: Any, *, extra: Any = None) -> tuple[Any, ...]:
    """What arrived: the fingerprints of ``value`` and ``extra``."""
    return fingerprint(value), None if extra is None else fingerprint(extra)


@wool.routine
async def echo(value: Any) -> Any:
    return value


@wool.routine
async def make(n: int, kind: str) -> Any:
    """``n`` bytes (0, 1, 2, ... mod 251) returned as ``kind``."""
    data = bytes(i % 251 for i in range(min(n, 251))) * (n // 251 + 1)
    data = data[:n]
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "pair":
        return data, bytearray(data)
    return Blob(bytearray(data))


@wool.routine
async def mutate(blob: Blob) -> int:
    """Write into a received writable buffer (fails if it arrived read-only)."""
    blob.data[0] ^= 0xFF
    return blob.data[0]


@wool.routine
async def chunks(n: int, size: int):
    """Yield ``n`` bytes objects of ``size`` bytes each."""
    for i in range(n):
        yield bytes([i % 256]) * size


_arrived: list[Any] = []
"""Every value :func:`identity` received in this worker, kept alive: a freed object's
address (its ``id``) is soon reused, so an ``id`` names one object only while it lives."""


@wool.routine
async def identity(value: Any) -> tuple[int, int, str]:
    """The worker's process id, the id of the object that arrived, and its digest."""
    import os

    _arrived.append(value)
    return os.getpid(), id(value), hashlib.sha256(memoryview(value)).hexdigest()
