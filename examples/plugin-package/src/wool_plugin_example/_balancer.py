"""A load balancer that keeps each routine on one worker (rendezvous hashing)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wool import Candidate, Task


class AffinityLoadBalancer:
    """Sends every call of a routine to the same worker, while that worker takes it.

    The workers are ranked by a hash of the routine's name and the worker's uid
    (rendezvous hashing): a routine stays on its worker (warm caches, imported modules),
    routines spread over the workers, and when a worker leaves only its routines move.
    If the first-ranked worker does not take a task, wool tries the next ones. It holds
    no state, so it pickles as is.
    """

    def order(self, task: Task, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates ranked for ``task``'s routine, best first."""
        return sorted(candidates, key=lambda c: _score(task.routine, c.uid), reverse=True)


def _score(routine: str, uid: str) -> int:
    digest = hashlib.blake2b(f"{routine}\0{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
