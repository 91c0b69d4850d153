"""A load balancer that keeps each routine on one worker (rendezvous hashing)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import wool

if TYPE_CHECKING:
    from wool import LoadBalancerContextLike, RemoteCall, Task


class AffinityLoadBalancer:
    """Sends every call of a routine to the same worker, while that worker takes it.

    For each task the workers are ranked by a hash of the routine's name and the worker's
    uid (rendezvous hashing), and tried in that order: a routine stays on its worker (warm
    caches, imported modules), routines spread over the workers, and when a worker leaves
    only its routines move. A ``wool.TransientDispatchError`` moves on to the next worker;
    any other ``wool.DispatchError`` evicts the worker first. When every worker has been
    tried, ``wool.NoWorkersAvailable`` is raised. It holds no state, so it pickles as is.
    """

    async def dispatch(self, task: Task, context: LoadBalancerContextLike) -> RemoteCall:
        """Dispatch ``task`` to the best-ranked worker that accepts it."""
        ranked = sorted(
            context.workers.items(),
            key=lambda item: _score(task.routine, item[0].uid),
            reverse=True,
        )
        failures: list[str] = []
        for metadata, connection in ranked:
            try:
                return await connection.dispatch(task)
            except wool.TransientDispatchError as exc:
                failures.append(str(exc))
            except wool.DispatchError as exc:
                context.evict(metadata)
                failures.append(str(exc))
        detail = "; ".join(failures) if failures else "no workers are known"
        raise wool.NoWorkersAvailable(
            f"no worker accepted {task.routine}() after trying {len(ranked)}: {detail}"
        )


def _score(routine: str, uid: str) -> int:
    digest = hashlib.blake2b(f"{routine}\0{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
