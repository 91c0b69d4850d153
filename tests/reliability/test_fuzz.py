"""Fuzz the worker's wire decoder with hypothesis; the soak runs many more examples."""

from __future__ import annotations

from tests.reliability.fuzzing import run_fuzz

EXAMPLES = 50


def test_random_and_mutated_frames_never_crash_or_hang_the_worker():
    report = run_fuzz(EXAMPLES)
    print(f"\nfuzz: {report.as_dict()}")
    assert report.examples >= EXAMPLES // 2  # hypothesis may stop early on a small space
