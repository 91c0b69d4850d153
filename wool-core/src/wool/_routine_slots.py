"""Routines travel once per session: a caller numbers each routine pickle it sends.

The first call of a routine on a session carries its pickle and a slot number; the
worker keeps the unpickled routine under that number for the rest of the session, and
later calls carry only the number. So a routine pickled by value (a ``__main__`` or
notebook function, a closure: a kilobyte or more) is neither sent, parsed, hashed nor
looked up again per call. Frames on a session arrive in the order they were sent, and
the worker resolves each call's routine as it reads the call, so a slot the caller
reuses for another routine is never confused with the one it held before. A worker
says how many slots it keeps (the ``wool-routine-slots`` header); a caller talking to a
worker that does not say sends the pickle with every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from wool._transport import ROUTINE_SLOTS_HEADER, Headers, header_int

SLOTS = 256
"""Routines a worker keeps per session: more distinct routines than this in use at once
(a notebook redefining many) only cost re-sending a pickle now and then."""


def advertised(metadata: object) -> int:
    """The number of slots a worker's session answer offers (0: none), at most :data:`SLOTS`."""
    slots = header_int(cast("Headers", metadata), ROUTINE_SLOTS_HEADER)  # gRPC's Metadata
    return 0 if slots is None else max(0, min(SLOTS, slots))


class CallerSlots:
    """The caller's numbering of the routine pickles it sent on one session.

    Slots are reused in turn (first in, first replaced) once all are taken.
    """

    def __init__(self, size: int) -> None:
        self._slot_of: dict[bytes, int] = {}
        self._held: list[bytes | None] = [None] * size
        self._next = 0

    def place(self, pickled: bytes) -> tuple[int, bool]:
        """The slot of ``pickled``, and whether it is new (the frame must carry the pickle)."""
        slot = self._slot_of.get(pickled)
        if slot is not None:
            return slot, False
        index = self._next
        self._next = (index + 1) % len(self._held)
        replaced = self._held[index]
        if replaced is not None:
            del self._slot_of[replaced]
        self._held[index] = pickled
        self._slot_of[pickled] = slot = index + 1
        return slot, True


class WorkerSlots:
    """The routines one session's caller numbered: each unpickled once, as it arrives."""

    def __init__(self, unpickle: Callable[[bytes], Any]) -> None:
        self._unpickle = unpickle
        self._kept: list[Any] = [None] * SLOTS

    def resolve(self, slot: int, pickled: bytes) -> Callable[[], Any]:
        """What runs the call's routine: ``pickled`` (kept under ``slot`` if that is not 0),
        or the routine kept under ``slot``. The returned function gives the routine, or
        raises why it cannot be had (it could not be unpickled, or was never sent)."""
        if slot and not 0 < slot <= SLOTS:
            return _failing(ValueError(f"routine slot {slot} is out of range 1..{SLOTS}"))
        if pickled:
            try:
                routine = self._unpickle(pickled)
                found: Callable[[], Any] = lambda: routine  # noqa: E731
            except Exception as exc:
                found = _failing(exc)
            if slot:
                self._kept[slot - 1] = found
            return found
        if not slot:
            return _failing(ValueError("the call carries no routine"))
        kept = self._kept[slot - 1]
        if kept is None:
            return _failing(ValueError(f"the caller named routine slot {slot}, never filled"))
        return kept


def _failing(exc: Exception) -> Callable[[], Any]:
    def fail() -> Any:
        raise exc

    return fail
