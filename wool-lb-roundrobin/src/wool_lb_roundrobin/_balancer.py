"""The round-robin load balancer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wool import Candidate, Task


class RoundRobinLoadBalancer:
    """Sends each task to the next worker in turn.

    Each task starts one worker further along the candidates than the previous one; if
    that worker does not take it, wool tries the following ones (skipping a worker that
    fails transiently, evicting one that fails otherwise). A copy starts again at the
    first worker, so pickling does not carry the position.
    """

    def __init__(self) -> None:
        self._next = 0

    def __getstate__(self) -> dict[str, int]:
        return {"_next": 0}

    def order(self, task: Task, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates, rotated to start at this task's turn."""
        if not candidates:
            return []
        start = self._next % len(candidates)
        self._next = start + 1
        return [*candidates[start:], *candidates[:start]]
