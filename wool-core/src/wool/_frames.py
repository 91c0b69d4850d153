"""Hand-written protobuf encoding for the frames on the hot path.

Big payloads (pickled arguments and results) are passed along as separate byte pieces
and joined once, when a batch is written, instead of being copied into and out of
protobuf messages. The bytes produced are ordinary ``wool.v1`` messages: a ``Requests``
or ``Responses`` batch is the concatenation of its ``frames`` fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from google.protobuf.message import Message

Pieces = list[bytes]

_FRAMES = b"\x0a"  # field 1 (frames), length-delimited
_CALL = b"\x08"  # field 1 (call), varint
_START = b"\x12"  # Request field 2 (start), length-delimited
_VALUE = b"\x22"  # Response field 4 (value), length-delimited


def varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + varint(len(data)) + data


def task_pieces(
    *,
    id: str,
    parent_id: str,
    routine: str,
    callable: bytes,
    arguments: bytes,
    proxy: bytes,
    tags: Iterable[str],
    generator: bool,
) -> Pieces:
    """A ``wool.v1.Task`` as pieces; ``arguments`` stays a piece of its own."""
    head = b"".join(
        (
            _field(0x0A, id.encode()),
            _field(0x12, parent_id.encode()) if parent_id else b"",
            _field(0x1A, routine.encode()),
            _field(0x22, callable),
            b"\x2a" + varint(len(arguments)),
        )
    )
    tail = b"".join(
        (
            _field(0x32, proxy),
            *(_field(0x3A, tag.encode()) for tag in tags),
            b"\x40\x01" if generator else b"",
        )
    )
    return [head, arguments, tail]


def start_frame(call: int, task: Pieces) -> Pieces:
    """A ``Request`` frame that starts ``task`` as call number ``call``."""
    size = sum(map(len, task))
    request_head = _CALL + varint(call) + _START + varint(size)
    return [_FRAMES + varint(len(request_head) + size) + request_head, *task]


def value_frame(call: int, payload: bytes) -> Pieces:
    """A ``Response`` frame carrying a pickled value."""
    head = _CALL + varint(call) + _VALUE + varint(len(payload))
    return [_FRAMES + varint(len(head) + len(payload)) + head, payload]


def message_frame(message: Message) -> bytes:
    """Any other ``Request`` or ``Response`` frame, encoded by protobuf."""
    data = message.SerializeToString()
    return _FRAMES + varint(len(data)) + data


def identity(data: bytes) -> bytes:
    """A gRPC serializer for batches that are already encoded."""
    return data


Frame = bytes | Pieces
"""One encoded frame: bytes, or pieces to be joined when the batch is written."""


def frame_size(frame: Frame) -> int:
    """The encoded length of a frame."""
    return len(frame) if isinstance(frame, bytes) else sum(map(len, frame))


def batch(first: Frame, more: list[Frame]) -> bytes:
    """One ``Requests``/``Responses`` message holding ``first`` and then ``more``."""
    parts: list[bytes] = []
    for frame in (first, *more):
        if isinstance(frame, bytes):
            parts.append(frame)
        else:
            parts.extend(frame)
    return b"".join(parts)


async def batches(outbox: asyncio.Queue[Frame | None], limit: int) -> AsyncIterator[bytes]:
    """Messages of the frames queued in ``outbox`` until a ``None``.

    Each message holds every frame that is ready when it is written, up to ``limit``
    bytes; a frame never splits, and a frame larger than ``limit`` goes alone (the
    producers keep frames under the limit).
    """
    carry: Frame | None = None
    while True:
        first = carry if carry is not None else await outbox.get()
        carry = None
        if first is None:
            return
        more: list[Frame] = []
        size = frame_size(first)
        while not outbox.empty():
            frame = outbox.get_nowait()
            if frame is None:
                yield batch(first, more)
                return
            length = frame_size(frame)
            if size + length > limit:
                carry = frame
                break
            more.append(frame)
            size += length
        yield batch(first, more)
