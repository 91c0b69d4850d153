"""The contracts that discovery and load-balancer plugins implement (structurally)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wool._metadata import DiscoveryEvent

if TYPE_CHECKING:
    from wool._caller_candidates import Candidate
    from wool._task import Task


@runtime_checkable
class DiscoveryPublisherLike(Protocol):
    """Announces worker lifecycle events to subscribers.

    Used as an async context manager by the process that owns the workers; leaving it
    releases everything it holds (and withdraws what it published).
    """

    async def __aenter__(self) -> DiscoveryPublisherLike: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def publish(self, event: DiscoveryEvent) -> None:
        """Make ``event`` visible to every current and future subscriber."""
        ...


@runtime_checkable
class DiscoverySubscriberLike(Protocol):
    """Delivers worker lifecycle events.

    Iterating starts with a ``worker-added`` event for every worker already known, then
    follows changes until the iterator is closed. A subscriber must be picklable: it
    travels with each task so that workers can dispatch nested routines.
    """

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]: ...


@runtime_checkable
class DiscoveryLike(Protocol):
    """A discovery protocol: a publisher and a subscriber over one shared medium."""

    @property
    def publisher(self) -> DiscoveryPublisherLike: ...

    @property
    def subscriber(self) -> DiscoverySubscriberLike: ...


@runtime_checkable
class LoadBalancerLike(Protocol):
    """Ranks the workers a task may go to; core does the dispatching.

    For every task, the proxy calls ``order(task, candidates)`` with one
    :class:`wool.Candidate` per routable worker (its metadata and load), in discovery
    order, and tries the candidates in the order returned until one accepts the task.
    ``order`` runs on the dispatch path: it must be a plain (not async) and quick method.
    It may return any iterable (a list, a generator: core stops pulling at the first
    worker that accepts), and may return only some candidates, even one (a choice): core
    tries those first and the others after, in discovery order, so every worker is tried
    once before ``NoWorkersAvailable``. It must not return anything but the candidates it
    was given. Skipping a worker that failed transiently and evicting one that failed
    otherwise is core's job, not the balancer's.

    A load balancer must be picklable: each task carries a copy, through which its
    routine dispatches nested calls on the worker.
    """

    def order(self, task: Task, candidates: Sequence[Candidate]) -> Iterable[Candidate]:
        """The candidates to try for ``task``, best first."""
        ...
