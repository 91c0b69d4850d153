"""Large bytes-like arguments and results travel out of band and arrive intact and typed."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

import wool
from tests.core import payload_routines as p

MB = 1_000_000


def sha(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(memoryview(data)).hexdigest()


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(3 * MB)


async def test_large_bytes_like_arguments_arrive_with_their_type_and_content(data):
    async with wool.WorkerPool(size=1):
        assert await p.describe(data) == (("bytes", len(data), sha(data), False), None)
        assert await p.describe(bytearray(data)) == (
            ("bytearray", len(data), sha(data), True),
            None,
        )
        assert await p.describe(memoryview(data)) == (
            ("memoryview", len(data), sha(data), False),
            None,
        )
        # A slice of a memoryview, a keyword argument, and a small one that stays in band.
        view = memoryview(data)[10:-10]
        assert await p.describe(b"tiny", extra=view) == (
            ("bytes", 4, sha(b"tiny"), False),
            ("memoryview", len(data) - 20, sha(view), False),
        )


async def test_multidimensional_and_strided_memoryviews_keep_their_shape(data):
    square = memoryview(bytearray(data[: 1024 * 1024])).cast("B", (1024, 1024))
    strided = memoryview(data)[::2]
    async with wool.WorkerPool(size=1):
        back = await p.echo(square)
        assert (back.format, back.shape, back.tobytes()) == ("B", (1024, 1024), square.tobytes())
        back = await p.echo(strided)
        assert back.shape == strided.shape and back.tobytes() == strided.tobytes()


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "pair", "blob"])
async def test_large_results_come_back_with_their_type_and_content(kind):
    n = 2 * MB + 7
    expected = (bytes(range(251)) * (n // 251 + 1))[:n]
    async with wool.WorkerPool(size=1):
        result = await p.make(n, kind)
    if kind == "pair":
        assert (type(result[0]), type(result[1])) == (bytes, bytearray)
        assert result[0] == expected and result[1] == expected
    elif kind == "blob":
        assert isinstance(result, p.Blob) and result.data == expected
    else:
        assert type(result).__name__ == kind and bytes(result) == expected


async def test_protocol_5_buffers_arrive_writable(data):
    blob = p.Blob(bytearray(data))
    async with wool.WorkerPool(size=1):
        assert await p.describe(blob) == (("bytearray", len(data), sha(data), True), None)
        assert await p.mutate(blob) == data[0] ^ 0xFF
    assert blob.data[0] == data[0]  # the caller's copy is untouched


async def test_numpy_arrays_round_trip_when_numpy_is_installed():
    numpy = pytest.importorskip("numpy")
    array = numpy.arange(500_000, dtype=numpy.float64).reshape(1000, 500)
    async with wool.WorkerPool(size=1):
        back = await p.echo(array)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert (back == array).all() and back.flags.writeable


async def test_a_generator_streams_large_items_in_order():
    async with wool.WorkerPool(size=1):
        items = [item async for item in p.chunks(5, MB)]
    assert [(len(i), i[0]) for i in items] == [(MB, k) for k in range(5)]


async def test_concurrent_large_calls_do_not_mix_their_buffers(data):
    import asyncio

    blobs = [bytes([k]) * MB + data[:MB] for k in range(8)]
    async with wool.WorkerPool(size=2):
        results = await asyncio.gather(*(p.describe(b) for b in blobs))
    assert [r[0][2] for r in results] == [sha(b) for b in blobs]


def test_encoding_a_large_argument_copies_nothing(data):
    from wool import _payload

    tracemalloc.start()
    try:
        payload = _payload.encode_arguments("f", p.describe, (data,), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert payload.buffers[0] is data
    assert peak < 100_000, f"encoding allocated {peak} bytes for a {len(data)}-byte argument"
