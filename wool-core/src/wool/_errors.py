"""Errors that wool raises on the caller side."""

from __future__ import annotations

import attrs


class NoWorkersAvailable(RuntimeError):
    """Every worker known to the pool was tried and none accepted the task."""


class DispatchError(Exception):
    """A worker did not accept a task; the task did not start there.

    A load balancer evicts the worker and tries the next one.
    """

    def __init__(self, message: str, *, worker: str = "") -> None:
        super().__init__(message)
        self.worker = worker


class TransientDispatchError(DispatchError):
    """A worker could not take a task right now; another worker may.

    A load balancer keeps the worker and tries the next one.
    """


class WorkerFull(TransientDispatchError):
    """A worker refused a task because it runs as many calls as its concurrency allows.

    The caller tries another worker, and waits for capacity when every worker is full.
    """


class WorkerLost(ConnectionError):
    """The connection to a worker broke after it accepted a task.

    The task may or may not have run (wool executes at most once, never twice).
    """


class PoolClosed(RuntimeError):
    """A call was still running when its pool was left, and did not finish within the
    pool's ``grace``: it was cancelled on its worker.

    ``pool`` names the pool, ``grace`` is the time the call was given.
    """

    def __init__(self, message: str, *, pool: str = "", grace: float = 0.0) -> None:
        super().__init__(message)
        self.pool = pool
        self.grace = grace

    def __reduce__(self) -> tuple[object, ...]:
        return (_pool_closed, (str(self), self.pool, self.grace))


def _pool_closed(message: str, pool: str, grace: float) -> PoolClosed:
    return PoolClosed(message, pool=pool, grace=grace)


@attrs.frozen
class TaskException:
    """What a routine raised on a worker: its type, message and remote traceback."""

    type: str
    message: str
    traceback: str
    worker: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> TaskException | None:
        """The record attached to an exception re-raised by wool, if any."""
        return getattr(exc, "__wool_task_exception__", None)


class RemoteTaskError(RuntimeError):
    """A routine raised an exception that could not travel back to the caller as itself."""

    def __init__(self, message: str, task_exception: TaskException) -> None:
        super().__init__(message)
        self.task_exception = task_exception

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.task_exception))
