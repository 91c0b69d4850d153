"""When a session's frames were handed to gRPC: never earlier than they really were."""

from __future__ import annotations

from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from wool import _handovers
from wool._handovers import HandOvers


def test_a_frame_not_handed_yet_has_no_time():
    marks = HandOvers()
    assert marks.time_of(1) is None and marks.last is None
    marks.record(3, 10.0)
    assert [marks.time_of(n) for n in (1, 3, 4)] == [10.0, 10.0, None]
    assert marks.last == 10.0


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60))
def test_each_frame_gets_the_time_of_its_batch_or_a_later_one(batches: list[int]):
    with mock.patch.object(_handovers, "MARKS", 8):  # old marks are merged often
        check_times(batches)


def check_times(batches: list[int]) -> None:
    marks = HandOvers()
    handed_at: list[float] = []  # the true time of each frame
    for now, size in enumerate(batches):
        handed_at += [float(now)] * size
        marks.record(len(handed_at), float(now))
    latest = len(batches) - 1
    for frame, true_time in enumerate(handed_at, start=1):
        time = marks.time_of(frame)
        assert time is not None and true_time <= time <= latest
    # The most recent marks are exact: the time a silence is measured from stays right.
    for frame in range(len(handed_at) - batches[-1] + 1, len(handed_at) + 1):
        assert marks.time_of(frame) == latest
    assert marks.time_of(len(handed_at) + 1) is None
