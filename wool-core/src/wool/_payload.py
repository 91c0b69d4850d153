"""Pickles whose large buffers travel out of band (pickle protocol 5), uncopied.

A pickle made here is a small stream plus a list of buffers: the memory of every large
``bytes``, ``bytearray`` or ``memoryview`` given as an argument (or returned as a result,
or as an element of a returned tuple or list), and of every object anywhere inside that
pickles its memory as a ``pickle.PickleBuffer`` (protocol 5, e.g. a NumPy array). The
buffers are written to the wire as they are, each as a message of its own, so a 10 MB
``bytes`` argument is never copied into a pickle nor joined into a protobuf message; on
arrival it becomes the argument without another copy. Buffers smaller than
:data:`OUT_OF_BAND_MIN` stay inside the pickle, where they are cheaper.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any, NamedTuple

import cloudpickle

from wool._serialization import unpicklable_argument

PROTOCOL = 5
OUT_OF_BAND_MIN = 64 * 1024
"""Buffers from this size on travel out of band; below it one message per buffer costs
more than the copy into the pickle."""

_BYTES_LIKE = (bytes, bytearray, memoryview)


_NO_BUFFERS: list[bytes] = []
_NO_FLAGS: list[bool] = []
"""Shared by every payload without buffers (never changed): a pending call costs less."""


class Payload(NamedTuple):
    """A pickle and its out-of-band buffers, in the pickle's order."""

    data: bytes
    buffers: list[bytes]
    """Each buffer's bytes, as the wire carries them."""
    writable: list[bool]
    """Per buffer: whether it must be rebuilt as writable memory on arrival."""


class _OutOfBand:
    """A bytes-like argument that pickles its memory out of band and comes back as its kind."""

    __slots__ = ("value",)

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        self.value = value

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        value = self.value
        if type(value) is not memoryview:
            return _rebuild, (type(value).__name__, pickle.PickleBuffer(value))
        shape = (value.format, value.shape)
        if not value.c_contiguous:
            value = memoryview(value.tobytes())
        return _rebuild, ("memoryview", pickle.PickleBuffer(value), shape)


def _rebuild(
    kind: str, buffer: Any, shape: tuple[str, tuple[int, ...] | None] | None = None
) -> bytes | bytearray | memoryview:
    """The argument an :class:`_OutOfBand` stood for, from the buffer that arrived."""
    if kind == "bytes":
        return buffer if type(buffer) is bytes else bytes(buffer)
    if kind == "bytearray":
        return buffer if type(buffer) is bytearray else bytearray(buffer)
    view: Any = memoryview(buffer).cast("B")
    if shape is not None and (shape[0] != "B" or len(shape[1] or ()) != 1):
        view = view.cast(shape[0], shape[1] or ())  # the format and shape it left with
    return view


def _large(value: object) -> bool:
    return type(value) in _BYTES_LIKE and memoryview(value).nbytes >= OUT_OF_BAND_MIN  # type: ignore[arg-type]


def wrap_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``(args, kwargs)`` with each large bytes-like argument marked to travel out of band."""
    if any(map(_large, args)):
        args = tuple(_OutOfBand(a) if _large(a) else a for a in args)
    if any(map(_large, kwargs.values())):
        kwargs = {k: _OutOfBand(v) if _large(v) else v for k, v in kwargs.items()}
    return args, kwargs


def wrap_result(value: Any) -> Any:
    """``value`` with large bytes-like parts (itself, or elements of a tuple or list) marked."""
    if _large(value):
        return _OutOfBand(value)
    if type(value) in (tuple, list) and any(map(_large, value)):
        return type(value)(_OutOfBand(v) if _large(v) else v for v in value)
    return value


def dumps(obj: object) -> Payload:
    """Pickle ``obj`` (the standard pickler when safe, else cloudpickle), buffers apart.

    As ``wool._serialization.dumps``: a pickle naming ``__main__`` is redone by value.
    """
    buffers: list[pickle.PickleBuffer] = []

    def keep(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < OUT_OF_BAND_MIN:
            return True  # in band
        buffers.append(buffer)
        return False

    try:
        data = pickle.dumps(obj, protocol=PROTOCOL, buffer_callback=keep)
    except Exception:
        data = b"__main__"
    if b"__main__" in data:
        buffers.clear()
        data = cloudpickle.dumps(obj, protocol=PROTOCOL, buffer_callback=keep)
    if not buffers:
        return Payload(data, _NO_BUFFERS, _NO_FLAGS)
    return Payload(data, [_wire_bytes(b) for b in buffers], [not b.raw().readonly for b in buffers])


def _wire_bytes(buffer: pickle.PickleBuffer) -> bytes:
    """The buffer's memory as ``bytes``: the very object when it is one, else one copy.

    gRPC writes ``bytes`` only (it copies them into its own slices, as it would any
    message).
    """
    raw = buffer.raw()
    owner = raw.obj
    if type(owner) is bytes and len(owner) == raw.nbytes:
        return owner
    return raw.tobytes()


def loads(data: bytes, buffers: Sequence[bytes | bytearray], writable: list[bool]) -> Any:
    """Unpickle what :func:`dumps` produced, given the buffers that arrived."""
    if not buffers:
        return pickle.loads(data)
    memory = [bytearray(b) if w else b for b, w in zip(buffers, writable, strict=True)]
    return pickle.loads(data, buffers=memory)


def encode_arguments(
    routine: str, function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Payload:
    """Pickle a call's ``(args, kwargs)``; raise ``TypeError`` naming an argument that cannot be."""
    try:
        return dumps(wrap_arguments(args, kwargs))
    except Exception as exc:
        name = unpicklable_argument(function, args, kwargs)
        raise TypeError(f"argument {name} of routine {routine}() cannot be pickled: {exc}") from exc
