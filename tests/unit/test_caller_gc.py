"""While very many calls are pending, the caller collects young objects less often,
and puts the program's own thresholds back afterwards."""

from __future__ import annotations

import gc

import pytest

from wool import _caller_gc


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def _burst(calls: int) -> None:
    for _ in range(calls):
        _caller_gc.call_started()


def _end(calls: int) -> None:
    for _ in range(calls):
        _caller_gc.call_ended()


def test_a_burst_raises_the_first_threshold_and_its_end_restores_it(thresholds):
    gc.set_threshold(700, 10, 10)
    _burst(_caller_gc.BURST)
    assert gc.get_threshold() == (700, 10, 10)  # not yet a burst
    _burst(1)
    assert gc.get_threshold() == (_caller_gc.BURST_THRESHOLD, 10, 10)
    _end(_caller_gc.BURST // 2)
    assert gc.get_threshold()[0] == _caller_gc.BURST_THRESHOLD  # still many pending
    _end(_caller_gc.BURST // 2 + 1)
    assert gc.get_threshold() == (700, 10, 10)
    assert _caller_gc.pending() == 0


def test_thresholds_the_program_set_during_a_burst_are_kept(thresholds):
    gc.set_threshold(700, 10, 10)
    _burst(_caller_gc.BURST + 1)
    gc.set_threshold(5_000, 10, 10)  # the program's own choice, made meanwhile
    _end(_caller_gc.BURST + 1)
    assert gc.get_threshold() == (5_000, 10, 10)


def test_a_program_that_disabled_collection_by_threshold_is_left_alone(thresholds):
    gc.set_threshold(0, 10, 10)
    _burst(_caller_gc.BURST + 1)
    assert gc.get_threshold() == (0, 10, 10)
    _end(_caller_gc.BURST + 1)
    assert gc.get_threshold() == (0, 10, 10)
