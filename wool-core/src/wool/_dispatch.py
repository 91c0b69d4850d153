"""Core's dispatch failure policy: try workers in the balancer's order until one accepts.

A load balancer only ranks the candidates (``LoadBalancerLike.order``); what happens when
a worker fails is decided here, once, for every balancer:

- a ``TransientDispatchError`` (the worker is unavailable, overloaded, stopping, or
  refused the task) skips the worker for this task and keeps it;
- any other ``DispatchError`` evicts the worker (until discovery announces it again);
- the candidates the balancer left out are tried after the ones it named, in discovery
  order, so every routable worker is tried once per task;
- a worker that left a call unaccepted past ``settings.accept_timeout`` (its loop is blocked, or
  it stopped answering) is unresponsive: the balancer does not see it, and it is tried
  only after every other worker, until it answers again; when no worker accepted and
  one was only slow, the task waits for that one as long as it takes;
- after that full pass, ``NoWorkersAvailable`` names each worker's failure.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from wool._candidates import Candidate, WorkerSet
from wool._connection import WorkerUnresponsive
from wool._errors import DispatchError, NoWorkersAvailable, TransientDispatchError

if TYPE_CHECKING:
    from wool._connection import RemoteCall
    from wool._protocols import LoadBalancerLike
    from wool._task import Task


async def first_accepting(
    task: Task, balancer: LoadBalancerLike, workers: WorkerSet
) -> tuple[RemoteCall, Callable[[], None]]:
    """The call of the first worker, in the balancer's order, that accepts ``task``.

    The call counts as in flight on its worker from the moment it is sent there (so
    that concurrent dispatches see it); call the returned function when it ends.
    """
    candidates: list[Candidate] = []
    unresponsive: list[Candidate] = []
    for candidate in workers.candidates():
        connection = workers.connection(candidate.uid)
        late = connection is not None and connection.unresponsive
        (unresponsive if late else candidates).append(candidate)
    failures: list[str] = []
    tried = 0
    slow: Candidate | None = None
    for candidate in itertools.chain(_full_pass(balancer, task, candidates), unresponsive):
        tried += 1
        try:
            return await _attempt(task, workers, candidate, patient=False)
        except _Skipped:
            tried -= 1
        except WorkerUnresponsive as exc:
            slow = slow or candidate
            failures.append(str(exc))
        except DispatchError as exc:
            failures.append(str(exc))
    if slow is not None:
        # Every worker refused or was too slow: rather than fail, wait for the first slow
        # one as long as it takes (a blocked loop, or a first call importing for long).
        try:
            return await _attempt(task, workers, slow, patient=True)
        except _Skipped:
            pass
        except DispatchError as exc:
            failures.append(str(exc))
    detail = "; ".join(failures) if failures else "no workers are known"
    raise NoWorkersAvailable(f"no worker accepted {task.routine}() after trying {tried}: {detail}")


class _Skipped(Exception):
    """The candidate is no longer routable (it left discovery, or was evicted)."""


async def _attempt(
    task: Task, workers: WorkerSet, candidate: Candidate, *, patient: bool
) -> tuple[RemoteCall, Callable[[], None]]:
    connection = workers.connection(candidate.uid)
    if connection is None:
        raise _Skipped
    finished = workers.started(candidate.uid)
    try:
        return await connection.dispatch(task, patient=patient), finished
    except TransientDispatchError:
        finished()
        raise
    except DispatchError:
        finished()
        workers.evict(candidate.metadata)
        raise
    except BaseException:
        finished()
        raise


def _full_pass(
    balancer: LoadBalancerLike, task: Task, candidates: Sequence[Candidate]
) -> Iterator[Candidate]:
    """The balancer's choices (checked), then the candidates it left out."""
    if not candidates:
        return
    by_uid = {c.uid: c for c in candidates}
    chosen = balancer.order(task, candidates)
    if inspect.isawaitable(chosen):
        close = getattr(chosen, "close", None)
        if close is not None:
            close()  # never awaited: do not leave a "never awaited" warning behind
        raise TypeError(
            f"load balancer {balancer!r}: order() must return the candidates (an iterable), "
            "not an awaitable; it is a plain, quick method, not a coroutine"
        )
    if not isinstance(chosen, Iterable):
        raise TypeError(
            f"load balancer {balancer!r}: order() must return an iterable of the candidates "
            f"it was given, got {type(chosen).__name__}"
        )
    seen: set[str] = set()
    for candidate in chosen:
        if not isinstance(candidate, Candidate) or candidate.uid not in by_uid:
            raise TypeError(
                f"load balancer {balancer!r}: order() returned {candidate!r}, which is not "
                "one of the candidates it was given"
            )
        if candidate.uid not in seen:
            seen.add(candidate.uid)
            yield candidate
    for candidate in candidates:
        if candidate.uid not in seen:
            yield candidate
