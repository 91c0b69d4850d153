"""The least-busy load balancer: power of two choices over the load workers report."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from wool import Candidate, Task

LAG_STEP = 0.05
"""Loop lag below this many seconds is noise (a loaded machine's scheduling delays, below
one interval of the worker's lag probe); above it, each step counts as busier."""


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
    event loop (``loop_lag`` in steps of 50 ms); of two equally busy workers, the one
    this balancer did not pick last (the other may still be finishing that call, as
    round-robin would assume), else a coin toss. A worker whose
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
        self._last: object = None  # the metadata of the latest pick

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._random = random.Random()
        self._last = None

    def order(self, task: Task, candidates: Sequence[Candidate]) -> Sequence[Candidate]:
        """The less busy of two random candidates, then the others, least busy first.

        Only the two drawn are ranked on the way: the others are sorted when wool asks
        for more than the pick (the pick refused the task), so a dispatch costs the same
        with two workers or two hundred.
        """
        count = len(candidates)
        draw = self._random.random
        if count == 2:  # the common pool of two: the less busy of both
            first, second = candidates
            if self._first_wins(first, second):
                return [first, second]
            return [second, first]
        if count < 2:
            return list(candidates)
        i = int(draw() * count)
        j = int(draw() * (count - 1))
        j += j >= i  # two distinct indices, uniformly
        pick = i if self._first_wins(candidates[i], candidates[j]) else j
        return _Ranking(candidates, pick, draw)

    def _first_wins(self, first: Candidate, second: Candidate) -> bool:
        """Whether ``first`` is less busy than ``second``; a tie goes to the one not
        picked last (the other may still be finishing that call), else a coin toss."""
        one, other = _busyness(first), _busyness(second)
        if one == other:
            if first.metadata is self._last:
                wins = False
            elif second.metadata is self._last:
                wins = True
            else:
                wins = self._random.random() < 0.5
        else:
            wins = one < other
        self._last = (first if wins else second).metadata
        return wins


class _Ranking(Sequence["Candidate"]):
    """The pick, then the other candidates least busy first (sorted on first need)."""

    __slots__ = ("_candidates", "_draw", "_pick", "_rest")

    def __init__(
        self, candidates: Sequence[Candidate], pick: int, draw: Callable[[], float]
    ) -> None:
        self._candidates = candidates
        self._pick = pick
        self._draw = draw
        self._rest: list[Candidate] | None = None

    def __len__(self) -> int:
        return len(self._candidates)

    def __iter__(self) -> Iterator[Candidate]:
        yield self._candidates[self._pick]
        yield from self._others()

    @overload
    def __getitem__(self, index: int) -> Candidate: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Candidate]: ...
    def __getitem__(self, index: int | slice) -> Candidate | Sequence[Candidate]:
        if index == 0:
            return self._candidates[self._pick]
        return [self._candidates[self._pick], *self._others()][index]

    def _others(self) -> list[Candidate]:
        if self._rest is None:
            draw, pick = self._draw, self._pick
            keyed = sorted(
                (_busyness(c), draw(), i) for i, c in enumerate(self._candidates) if i != pick
            )
            self._rest = [self._candidates[i] for *_, i in keyed]
        return self._rest


def _busyness(candidate: Candidate) -> tuple[bool, int, int]:
    """Full first, then :func:`load`, then the loop lag in steps of ``LAG_STEP``."""
    running = load(candidate)
    limit = candidate.concurrency
    lag = candidate.loop_lag
    return (limit is not None and running >= limit, running, int(lag / LAG_STEP) if lag else 0)
