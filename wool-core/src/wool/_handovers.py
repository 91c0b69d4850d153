"""When the frames of a stream were handed to gRPC: where a peer's silence starts.

A caller blames a worker for not answering a call only once the call's start frame has
been on its way for the whole accept timeout. The frame is queued when the call starts
and handed to gRPC when the session's writer gets a turn, which a caller busy with other
work (a hundred thousand calls started at once) may not give it for seconds.
"""

from __future__ import annotations

from bisect import bisect_left

MARKS = 4096
"""Marks kept at most; the older half is then merged into one (a later time for those
frames: a silence measured from it is shorter, never longer, than the true one)."""


class HandOvers:
    """Frame counts handed to gRPC, and when (loop time), in order."""

    __slots__ = ("_counts", "_times")

    def __init__(self) -> None:
        self._counts: list[int] = []
        self._times: list[float] = []

    def record(self, handed: int, now: float) -> None:
        """``handed`` frames (in all) were handed to gRPC by ``now``."""
        counts = self._counts
        if counts and counts[-1] >= handed:
            return
        counts.append(handed)
        self._times.append(now)
        if len(counts) >= MARKS:
            half = MARKS // 2
            del counts[: half - 1], self._times[: half - 1]

    def time_of(self, frame: int) -> float | None:
        """When frame number ``frame`` (counting from 1) was handed to gRPC, at the
        latest; None if it was not yet."""
        index = bisect_left(self._counts, frame)
        return self._times[index] if index < len(self._times) else None

    @property
    def last(self) -> float | None:
        """When the last frame handed so far was handed (None: none yet)."""
        return self._times[-1] if self._times else None
