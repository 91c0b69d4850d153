"""The least-busy load balancer: power of two choices over the load workers report."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wool import Candidate, Task

LAG_STEP = 0.01
"""Loop lag below this many seconds is noise; above it, each step counts as busier."""


def load(candidate: Candidate) -> int:
    """A worker's calls in flight, as best this caller knows them.

    The worker's own report (every caller's calls running there) plus this caller's
    calls sent since that report; before the worker reported, this caller's calls in
    flight there.
    """
    if candidate.reported_running is None:
        return candidate.in_flight
    return candidate.reported_running + candidate.unreported


class LeastBusyLoadBalancer:
    """Sends each task to the less busy of two workers drawn at random.

    Busy means :func:`load` (calls running there, whoever sent them), then a stalled
    event loop (``loop_lag`` in steps of 10 ms), then a coin toss. A worker whose
    reported concurrency limit is reached goes last. After the pick, the other workers
    follow, least busy first, for wool to try if the pick refuses the task.

    Why two random choices rather than the least busy of all: every caller of a worker
    sees its load through reports that lag behind by up to one round trip. Callers that
    all picked "the least busy" from the same stale reports would all pile onto that one
    worker until its next report (herding). Comparing two random workers keeps almost
    all of the benefit (the busiest worker's excess load grows like log log n instead of
    log n / log log n for a random pick) while callers spread out. With two workers it
    is the least busy of both. ``seed`` makes the draws repeatable; copies (each task
    carries one) draw afresh.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._random = random.Random()

    def order(self, task: Task, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The less busy of two random candidates, then the others, least busy first."""
        if len(candidates) == 2:  # the common pool of two, without sorting
            first, second = candidates
            one, other = _busyness(first), _busyness(second)
            if one < other or (one == other and self._random.random() < 0.5):
                return [first, second]
            return [second, first]
        if len(candidates) < 2:
            return list(candidates)
        draw = self._random.random
        keyed = sorted((_busyness(c), draw(), i) for i, c in enumerate(candidates))
        if len(candidates) > 2:
            first, second = self._random.sample(range(len(keyed)), 2)
            pick = keyed[min(first, second)]  # keyed is sorted: the lower index is less busy
            keyed.remove(pick)
            keyed.insert(0, pick)
        return [candidates[i] for *_, i in keyed]


def _busyness(candidate: Candidate) -> tuple[bool, int, int]:
    running = load(candidate)
    full = candidate.concurrency is not None and running >= candidate.concurrency
    lag = candidate.loop_lag or 0.0
    return (full, running, int(lag / LAG_STEP))
