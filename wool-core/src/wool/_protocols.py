"""The contracts that discovery and load-balancer plugins implement (structurally)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wool._metadata import DiscoveryEvent, WorkerMetadata

if TYPE_CHECKING:
    from wool._connection import RemoteCall, WorkerConnection
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
class LoadBalancerContextLike(Protocol):
    """The workers a load balancer may choose from, as the proxy currently knows them."""

    @property
    def workers(self) -> Mapping[WorkerMetadata, WorkerConnection]:
        """The live workers, in the order discovery announced them."""
        ...

    def evict(self, worker: WorkerMetadata) -> None:
        """Stop routing to ``worker`` until discovery announces it again."""
        ...


@runtime_checkable
class LoadBalancerLike(Protocol):
    """Chooses the worker for each task.

    ``dispatch`` calls ``connection.dispatch(task)`` on the workers it selects until one
    accepts. It must try another worker after a ``TransientDispatchError``, evict the
    worker and try another after any other ``DispatchError``, and raise
    ``NoWorkersAvailable`` once every worker has been tried. A load balancer must be
    picklable: workers use a copy of it for nested dispatch.
    """

    async def dispatch(self, task: Task, context: LoadBalancerContextLike) -> RemoteCall: ...
