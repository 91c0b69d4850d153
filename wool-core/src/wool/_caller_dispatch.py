"""Core's dispatch failure policy: try workers in the balancer's order until one accepts.

A load balancer only ranks the candidates (``LoadBalancerLike.order``); what happens when
a worker fails is decided here, once, for every balancer:

- a ``TransientDispatchError`` (the worker is unavailable, overloaded, stopping, or
  refused the task) skips the worker for this task and keeps it;
- any other ``DispatchError`` evicts the worker (until discovery announces it again);
- the candidates the balancer left out are tried after the ones it named, in discovery
  order, so every routable worker is tried once per task;
- a worker that refused the task as full (its concurrency limit), or that its latest
  load report shows full, is skipped too; when the pass found only full workers (and
  failures), the task waits for capacity at the caller, in arrival order
  (:mod:`wool._caller_capacity`), and never fails for that reason;
- a worker that left a call unaccepted past ``settings.accept_timeout`` while silent (its
  loop is blocked, or it stopped answering) is unresponsive: the balancer does not see
  it, and it is tried only after every other worker, until it answers again; when no
  worker accepted and one was only slow, the task waits for that one as long as it takes;
- with ``standby`` (opt-in), the task whose turn it is, when every worker is full and
  more tasks wait than there are workers, goes to a full worker that may hold it until a
  slot frees (:func:`_stand_by`);
- after a full pass without a full worker, ``NoWorkersAvailable`` names each failure.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from wool._caller_candidates import Candidate, CandidateSet
from wool._caller_connection import WorkerUnresponsive
from wool._errors import DispatchError, NoWorkersAvailable, TransientDispatchError, WorkerFull

if TYPE_CHECKING:
    from wool._caller_connection import RemoteCall
    from wool._protocols import LoadBalancerLike
    from wool._task import Task


async def first_accepting(
    task: Task, balancer: LoadBalancerLike, workers: CandidateSet
) -> tuple[RemoteCall, Callable[[], None]]:
    """The call of the first worker, in the balancer's order, that accepts ``task``.

    The call counts as in flight on its worker from the moment it is sent there (so
    that concurrent dispatches see it); call the returned function when it ends.
    """
    capacity = workers.capacity
    waited = False
    if capacity.busy:  # others wait for capacity: queue behind them
        await capacity.wait_turn(first=False, nudge=workers.standby)
        waited = True
    while True:
        end_turn = _once(capacity.end_turn) if waited else _nothing
        try:
            accepted = await _one_pass(task, balancer, workers, end_turn)
            # Only the task whose turn it is goes to a standby place: none overtakes.
            if accepted is None and waited and workers.standby_wanted():
                accepted = await _stand_by(task, balancer, workers, end_turn)
        finally:
            end_turn()
        if accepted is not None:
            return accepted
        await capacity.wait_turn(first=waited, nudge=workers.standby)
        waited = True


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, to be called at most once however often the result is called."""
    done = False

    def once() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return once


def _nothing() -> None:
    pass


async def _one_pass(
    task: Task, balancer: LoadBalancerLike, workers: CandidateSet, sending: Callable[[], None]
) -> tuple[RemoteCall, Callable[[], None]] | None:
    """Try each worker once; None when only full workers (and failures) were found.

    ``sending()`` is called before the task is first sent to a worker.
    """
    candidates: list[Candidate] = []
    unresponsive: list[Candidate] = []
    for candidate in workers.candidates():
        (unresponsive if workers.unresponsive(candidate.uid) else candidates).append(candidate)
    full = 0
    failures: list[str] = []
    tried = 0
    slow: Candidate | None = None

    def attempts() -> Iterator[tuple[bool, Candidate]]:
        for candidate in itertools.chain(_full_pass(balancer, task, candidates), unresponsive):
            yield False, candidate
        if slow is not None and not full:
            # No worker accepted and one was only slow: wait for it as long as it takes
            # (a blocked loop, or a first call importing for long).
            yield True, slow

    for patient, candidate in attempts():
        connection = workers.connection(candidate.uid)
        if connection is None:
            continue  # it left discovery, or another dispatch evicted it, meanwhile
        if workers.known_full(connection):
            full += 1
            continue
        tried += 0 if patient else 1
        sending()
        finished = workers.started(candidate.uid)
        try:
            return await connection.dispatch(task, patient=patient), finished
        except WorkerFull:
            full += 1
        except WorkerUnresponsive as exc:
            slow = slow or candidate
            failures.append(str(exc))
        except TransientDispatchError as exc:
            failures.append(str(exc))
        except DispatchError as exc:
            workers.evict(candidate.metadata)
            failures.append(str(exc))
        except BaseException:
            finished()
            raise
        finished()
    if full:
        return None
    detail = "; ".join(failures) if failures else "no workers are known"
    raise NoWorkersAvailable(f"no worker accepted {task.routine}() after trying {tried}: {detail}")


async def _stand_by(
    task: Task, balancer: LoadBalancerLike, workers: CandidateSet, sending: Callable[[], None]
) -> tuple[RemoteCall, Callable[[], None]] | None:
    """Send the task to one full worker that may hold it, not started, until a slot
    frees (the first in the balancer's order); None if there is none, or it did not
    start the task within the accept timeout (the task then waits at the caller)."""
    candidates = [c for c in workers.candidates() if not workers.unresponsive(c.uid)]
    for candidate in _full_pass(balancer, task, candidates):
        connection = workers.connection(candidate.uid)
        if connection is None or not workers.may_stand_by(connection):
            continue
        sending()
        finished = workers.started(candidate.uid)
        stood_by = workers.standing_by(candidate.uid)
        refused = False
        try:
            return await connection.dispatch(task, standby=True), finished
        except TransientDispatchError:  # another caller's standby, a long call, stopping
            refused = True
        except DispatchError:
            workers.evict(candidate.metadata)
        except BaseException:
            finished()
            raise
        finally:
            stood_by()
        finished()
        if refused:
            workers.standby_failed(candidate.uid)  # after finished(), which would clear it
        return None
    return None


def _full_pass(
    balancer: LoadBalancerLike, task: Task, candidates: Sequence[Candidate]
) -> Iterator[Candidate]:
    """The balancer's choices (checked), then the candidates it left out."""
    if not candidates:
        return
    by_uid = {c.uid: c for c in candidates}
    chosen = balancer.order(task, candidates)
    if not isinstance(chosen, list) and inspect.isawaitable(chosen):  # a list: the common case
        close = getattr(chosen, "close", None)
        if close is not None:
            close()  # never awaited: do not leave a "never awaited" warning behind
        raise TypeError(
            f"load balancer {balancer!r}: order() must return the candidates (an iterable), "
            "not an awaitable; it is a plain, quick method, not a coroutine"
        )
    if not isinstance(chosen, list) and not isinstance(chosen, Iterable):  # pyright: ignore[reportUnnecessaryIsInstance] (a balancer plugin may return anything)
        raise TypeError(
            f"load balancer {balancer!r}: order() must return an iterable of the candidates "
            f"it was given, got {type(chosen).__name__}"
        )
    seen: set[str] = set()
    for candidate in chosen:
        if not isinstance(candidate, Candidate) or candidate.uid not in by_uid:  # pyright: ignore[reportUnnecessaryIsInstance] (a balancer plugin may return anything)
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
