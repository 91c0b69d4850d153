"""Hand-written protobuf encoding for the frames on the hot path.

Big payloads (pickled arguments and results) are passed along as separate byte pieces
and joined once, when a batch is written, instead of being copied into and out of
protobuf messages. The bytes produced are ordinary ``wool.v1`` messages: a ``Requests``
or ``Responses`` batch is the concatenation of its ``frames`` fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from wool._wire import worker_pb2 as pb

Pieces = list[bytes]

_VARINT, _LENGTH_DELIMITED = 0, 2
_WIRE_TYPES = {
    FieldDescriptor.TYPE_UINT64: _VARINT,
    FieldDescriptor.TYPE_UINT32: _VARINT,
    FieldDescriptor.TYPE_BOOL: _VARINT,
    FieldDescriptor.TYPE_STRING: _LENGTH_DELIMITED,
    FieldDescriptor.TYPE_BYTES: _LENGTH_DELIMITED,
    FieldDescriptor.TYPE_MESSAGE: _LENGTH_DELIMITED,
}


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


def _key(message: type[Message], field: str) -> bytes:
    """The encoded key (field number and wire type) of a field, from the generated code."""
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    return varint(descriptor.number << 3 | _WIRE_TYPES[descriptor.type])


_FRAMES = _key(pb.Requests, "frames")
if _FRAMES != _key(pb.Responses, "frames"):  # pragma: no cover - a proto edit broke batching
    raise ImportError("wool.v1.Requests and Responses must number their frames field alike")
_CALL = _key(pb.Request, "call")
if _CALL != _key(pb.Response, "call"):  # pragma: no cover
    raise ImportError("wool.v1.Request and Response must number their call field alike")
_LOAD = _key(pb.Responses, "load")
_START = _key(pb.Request, "start")
_ACCEPT_BY = _key(pb.Request, "accept_by")
_STANDBY = _key(pb.Request, "standby") + varint(1)
_VALUE = _key(pb.Response, "value")
_TASK_ID = _key(pb.Task, "id")
_TASK_PARENT_ID = _key(pb.Task, "parent_id")
_TASK_ROUTINE = _key(pb.Task, "routine")
_TASK_CALLABLE = _key(pb.Task, "callable")
_TASK_ARGUMENTS = _key(pb.Task, "arguments")
_TASK_ROUTINE_SLOT = _key(pb.Task, "routine_slot")
_TASK_PROXY = _key(pb.Task, "proxy")
_TASK_TAGS = _key(pb.Task, "tags")
_TASK_GENERATOR = _key(pb.Task, "generator")
_TASK_BUFFERS = _key(pb.Task, "buffers")
_RESPONSE_BUFFERS = _key(pb.Response, "buffers")
_TASK_CONTEXT = _key(pb.Task, "context")
_RESPONSE_CONTEXT = _key(pb.Response, "context")
_TASK_HEADERS = _key(pb.Task, "headers")
_HEADER_KEY = _key(pb.Task.HeadersEntry, "key")
_HEADER_VALUE = _key(pb.Task.HeadersEntry, "value")


def _field(key: bytes, data: bytes) -> bytes:
    """A length-delimited field, omitted when empty (as protobuf omits proto3 defaults)."""
    return key + varint(len(data)) + data if data else b""


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
    context: bytes = b"",
    headers: Mapping[str, str] | None = None,
    buffers: Sequence[pb.Buffer] = (),
) -> Pieces:
    """A ``wool.v1.Task`` as pieces; ``arguments`` stays a piece of its own.

    The bytes are those ``pb.Task(...).SerializeToString()`` gives (``headers`` entries
    in the mapping's order, which protobuf does not fix).
    """
    head = b"".join(
        (
            _field(_TASK_ID, id.encode()),
            _field(_TASK_PARENT_ID, parent_id.encode()),
            _field(_TASK_ROUTINE, routine.encode()),
            _field(_TASK_CALLABLE, callable),
            _TASK_ARGUMENTS + varint(len(arguments)) if arguments else b"",
        )
    )
    tail = _task_tail(proxy, tuple(tags), generator)  # shared: no copy per pending call
    if context or headers:
        tail = b"".join(
            (
                tail,
                _field(_TASK_CONTEXT, context),
                *(_header(name, value) for name, value in (headers or {}).items()),
            )
        )
    if buffers:
        tail += task_buffers(buffers)
    return [head, arguments, tail]


_tails: dict[tuple[bytes, tuple[str, ...], bool], bytes] = {}
TAILS_CACHE_SIZE = 256
"""Distinct (proxy, tags, kind) tails kept: one per pool and routine kind in practice."""


def routine_field(pickled: bytes, slot: int, new: bool) -> bytes:
    """The ``callable`` and ``routine_slot`` fields of a ``Task`` (protobuf takes fields in
    any order, so this piece may lead the task's others): the pickle unless ``slot`` names
    one the worker already keeps (``new`` False)."""
    if not slot:
        return _field(_TASK_CALLABLE, pickled)
    field = _field(_TASK_CALLABLE, pickled) if new else b""
    return field + _TASK_ROUTINE_SLOT + varint(slot)


def _task_tail(proxy: bytes, tags: tuple[str, ...], generator: bool) -> bytes:
    """The fields after ``arguments`` up to ``context``, shared by every task of one proxy
    (a pending call then costs no copy of the proxy's pickle). ``context`` and ``headers``
    vary per call and follow it; ``buffers`` come last."""
    key = (proxy, tags, generator)
    tail = _tails.get(key)
    if tail is None:
        tail = b"".join(
            (
                _field(_TASK_PROXY, proxy),
                *(_TASK_TAGS + varint(len(data)) + data for data in map(str.encode, tags)),
                _TASK_GENERATOR + b"\x01" if generator else b"",
            )
        )
        if len(_tails) >= TAILS_CACHE_SIZE:
            _tails.clear()
        _tails[key] = tail
    return tail


def task_buffers(buffers: Sequence[pb.Buffer]) -> bytes:
    """The ``buffers`` field of a ``Task`` (its last), to append to its pieces."""
    return b"".join(_message_field(_TASK_BUFFERS, buffer) for buffer in buffers)


def _message_field(key: bytes, message: Message) -> bytes:
    """A message-typed field, present even when the message is empty (as protobuf does)."""
    data = message.SerializeToString()
    return key + varint(len(data)) + data


def _header(name: str, value: str) -> bytes:
    """One entry of the ``headers`` map (protobuf writes both fields, even when empty)."""
    key, data = name.encode(), value.encode()
    entry = _HEADER_KEY + varint(len(key)) + key + _HEADER_VALUE + varint(len(data)) + data
    return _TASK_HEADERS + varint(len(entry)) + entry


def _call(call: int) -> bytes:
    return _CALL + varint(call) if call else b""


def start_frame(call: int, task: Pieces, accept_by: int = 0, standby: bool = False) -> Pieces:
    """A ``Request`` frame that starts ``task`` as call number ``call``, to be started
    by ``accept_by`` (milliseconds of the session; 0 for no deadline); ``standby``: a
    full worker may hold it until a slot frees."""
    size = sum(map(len, task))
    request_head = _call(call) + _START + varint(size)
    tail = [_ACCEPT_BY + varint(accept_by)] if accept_by else []
    if standby:
        tail.append(_STANDBY)
    size += sum(map(len, tail))
    return [_FRAMES + varint(len(request_head) + size) + request_head, *task, *tail]


def value_frame(
    call: int, payload: bytes, context: bytes = b"", buffers: Sequence[pb.Buffer] = ()
) -> Pieces:
    """A ``Response`` frame carrying a pickled value (then the routine's changed context
    and the list of the value's buffers)."""
    head = _call(call) + _VALUE + varint(len(payload))
    tail = _field(_RESPONSE_CONTEXT, context) + b"".join(
        _message_field(_RESPONSE_BUFFERS, buffer) for buffer in buffers
    )
    size = len(head) + len(payload) + len(tail)
    frame = [_FRAMES + varint(size) + head, payload]
    if tail:
        frame.append(tail)
    return frame


def message_frame(message: Message) -> bytes:
    """Any other ``Request`` or ``Response`` frame, encoded by protobuf."""
    data = message.SerializeToString()
    return _FRAMES + varint(len(data)) + data


def load_field(report: Message) -> bytes:
    """A ``Responses`` batch's ``load`` field; appended to the frames of a batch."""
    data = report.SerializeToString()
    return _LOAD + varint(len(data)) + data


def identity(data: bytes) -> bytes:
    """A gRPC serializer for batches that are already encoded."""
    return data


class Buffered(NamedTuple):
    """A frame whose out-of-band buffers follow its batch, one message each, as they are."""

    frame: Pieces
    buffers: list[bytes]


Frame = bytes | Pieces | Buffered
"""One encoded frame: bytes, pieces to be joined when the batch is written, or a frame
with buffers to write after it."""


def frame_size(frame: Frame) -> int:
    """The encoded length of a frame (its buffers, which travel apart, not counted)."""
    if isinstance(frame, bytes):
        return len(frame)
    if isinstance(frame, Buffered):
        return sum(map(len, frame.frame))
    return sum(map(len, frame))


def batch(first: Frame, more: list[Frame], tail: bytes = b"") -> bytes:
    """One ``Requests``/``Responses`` message holding ``first``, then ``more``, then ``tail``."""
    parts: list[bytes] = []
    for frame in (first, *more):
        if isinstance(frame, bytes):
            parts.append(frame)
        elif isinstance(frame, Buffered):
            parts.extend(frame.frame)
        else:
            parts.extend(frame)
    if tail:
        parts.append(tail)
    return b"".join(parts)


async def batches(
    outbox: asyncio.Queue[Frame | None],
    limit: int,
    trailer: Callable[[], bytes] | None = None,
    on_take: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """Messages of the frames queued in ``outbox`` until a ``None``.

    Each message holds every frame that is ready when it is written, up to ``limit``
    bytes; a frame never splits, and a frame larger than ``limit`` goes alone (the
    producers keep frames under the limit). ``trailer()``, if given, is appended to each
    message as it is written (a worker's load report). A :class:`Buffered` frame ends its
    batch, and each of its buffers follows as a message of its own, uncopied.
    ``on_take(n)``, if given, is told the number of frames in each message before it is
    yielded.
    """
    carry: Frame | None = None
    while True:
        first = carry if carry is not None else await outbox.get()
        carry = None
        if first is None:
            return
        more: list[Frame] = []
        last = first
        size = frame_size(first)
        while not isinstance(last, Buffered) and not outbox.empty():
            frame = outbox.get_nowait()
            if frame is None:
                if on_take is not None:
                    on_take(1 + len(more))
                yield batch(first, more, trailer() if trailer else b"")
                return
            length = frame_size(frame)
            if size + length > limit:
                carry = frame
                break
            more.append(frame)
            last = frame
            size += length
        if on_take is not None:
            on_take(1 + len(more))
        yield batch(first, more, trailer() if trailer else b"")
        if isinstance(last, Buffered):
            for buffer in last.buffers:
                yield buffer
