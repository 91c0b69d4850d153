"""The round-robin load balancer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import wool

if TYPE_CHECKING:
    from wool import LoadBalancerContextLike, RemoteCall, Task


class RoundRobinLoadBalancer:
    """Sends each task to the next worker in turn.

    A worker that fails transiently (unavailable, overloaded, refusing) is skipped for
    this task; one that fails otherwise is evicted. After every worker has been tried
    once, ``wool.NoWorkersAvailable`` is raised with each worker's failure.
    """

    def __init__(self) -> None:
        self._next = 0

    def __getstate__(self) -> dict[str, int]:
        return {"_next": 0}

    async def dispatch(self, task: Task, context: LoadBalancerContextLike) -> RemoteCall:
        """Dispatch ``task`` to the next worker that accepts it."""
        workers = list(context.workers.items())
        failures: list[str] = []
        # Advance before awaiting, so that concurrent dispatches spread over the workers.
        start = self._next
        self._next = (start + 1) % max(len(workers), 1)
        for offset in range(len(workers)):
            metadata, connection = workers[(start + offset) % len(workers)]
            try:
                call = await connection.dispatch(task)
            except wool.TransientDispatchError as exc:
                failures.append(str(exc))
                continue
            except wool.DispatchError as exc:
                context.evict(metadata)
                failures.append(str(exc))
                continue
            return call
        detail = "; ".join(failures) if failures else "no workers are known"
        raise wool.NoWorkersAvailable(
            f"no worker accepted {task.routine}() after trying {len(workers)}: {detail}"
        )
