"""The conformance suite of discovery plugins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import cloudpickle

from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._protocols import DiscoveryLike, DiscoveryPublisherLike, DiscoverySubscriberLike
from wool.testing._common import check, fail, run
from wool.testing._workers import worker_metadata

DiscoveryFactory = Callable[[], DiscoveryLike]


def added(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-added", worker)


def updated(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-updated", worker)


def dropped(worker: WorkerMetadata) -> DiscoveryEvent:
    return DiscoveryEvent("worker-dropped", worker)


class DiscoveryConformance:
    """The contract of a discovery plugin, as pytest tests to inherit.

    Subclass it in a test module (the subclass's name must start with ``Test``) and
    provide a ``discovery_factory`` fixture: a callable returning a new ``DiscoveryLike``
    on a medium that belongs to the test (a namespace, a folder...), the same medium
    every time it is called within one test::

        class TestMyDiscovery(wool.testing.DiscoveryConformance):
            @pytest.fixture
            def discovery_factory(self, tmp_path):
                return lambda: MyDiscovery(tmp_path / "workers")

    Each check runs in an event loop of its own (the factory is called inside it), so the
    suite needs no pytest plugin. Workers are published with this process's pid, which
    is alive. ``timeout`` bounds every wait for an event. Override a check to skip it
    (say why). What the medium leaves behind after a test is the plugin's own tests'
    business: check it in the fixture's teardown.
    """

    timeout: float = 10.0

    # -- the checks -----------------------------------------------------------------

    def test_discovery_implements_the_protocols(self, discovery_factory: DiscoveryFactory):
        discovery = discovery_factory()
        check(
            isinstance(discovery, DiscoveryLike),  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
            f"{discovery!r} lacks the publisher/subscriber properties of wool.DiscoveryLike",
        )
        check(
            isinstance(discovery.publisher, DiscoveryPublisherLike),  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
            f"{discovery.publisher!r} is not a wool.DiscoveryPublisherLike "
            "(async context manager with async publish(event))",
        )
        check(
            isinstance(discovery.subscriber, DiscoverySubscriberLike),  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
            f"{discovery.subscriber!r} is not a wool.DiscoverySubscriberLike (__aiter__)",
        )

    def test_published_metadata_makes_the_round_trip_intact(
        self, discovery_factory: DiscoveryFactory
    ):
        async def body() -> None:
            discovery = discovery_factory()
            worker = worker_metadata(address="[::1]:4242", tags={"gpu", "zone-a"}, secure=True)
            plain = worker_metadata(address="127.0.0.1:50123")
            async with discovery.publisher as publisher:
                await publisher.publish(added(worker))
                await publisher.publish(added(plain))
                async with self._events(discovery) as events:
                    seen = {await self._next(events, "the published workers")}
                    seen.add(await self._next(events, "the published workers"))
            check(
                seen == {added(worker), added(plain)},
                f"published {[added(worker), added(plain)]}, "
                f"subscriber saw {sorted(seen, key=str)}",
            )

        self._run(body(), "round trip of metadata")

    def test_existing_workers_are_announced_first(self, discovery_factory: DiscoveryFactory):
        async def body() -> None:
            discovery = discovery_factory()
            workers = [worker_metadata() for _ in range(3)]
            later = worker_metadata()
            async with discovery.publisher as publisher:
                for worker in workers:
                    await publisher.publish(added(worker))
                async with self._events(discovery) as events:
                    first = [await self._next(events, "existing workers") for _ in workers]
                    check(
                        sorted(first, key=str) == sorted((added(w) for w in workers), key=str),
                        f"a new subscriber must start with worker-added for each of the "
                        f"{len(workers)} workers already published; it saw {first}",
                    )
                    await publisher.publish(added(later))
                    event = await self._next(events, "a worker published after subscribing")
            check(event == added(later), f"expected {added(later)}, got {event}")

        self._run(body(), "existing workers announced first")

    def test_added_updated_and_dropped_reach_a_subscriber(
        self, discovery_factory: DiscoveryFactory
    ):
        async def body() -> None:
            discovery = discovery_factory()
            worker = worker_metadata(tags={"v1"})
            changed = worker_metadata(worker.uid, address="127.0.0.1:50999", tags={"v2"})
            async with discovery.publisher as publisher:
                async with self._events(discovery) as events:
                    for event in (added(worker), updated(changed), dropped(changed)):
                        await publisher.publish(event)
                        seen = await self._next(events, event.type)
                        check(seen == event, f"published {event}, subscriber saw {seen}")
                    again = worker_metadata(worker.uid)
                    await publisher.publish(added(again))
                    seen = await self._next(events, "a dropped worker published again")
                    check(seen == added(again), f"expected {added(again)}, got {seen}")

        self._run(body(), "added, updated and dropped events")

    def test_a_new_subscriber_does_not_see_dropped_workers(
        self, discovery_factory: DiscoveryFactory
    ):
        async def body() -> None:
            discovery = discovery_factory()
            gone, kept, sentinel = worker_metadata(), worker_metadata(), worker_metadata()
            async with discovery.publisher as publisher:
                await publisher.publish(added(gone))
                await publisher.publish(added(kept))
                await publisher.publish(dropped(gone))
                async with self._events(discovery) as events:
                    await publisher.publish(added(sentinel))
                    seen = await self._until(events, added(sentinel))
            check(
                all(e.metadata.uid != gone.uid for e in seen),
                f"a worker dropped before subscribing was announced: {seen}",
            )
            check(added(kept) in seen, f"the live worker {kept.uid} was not announced: {seen}")

        self._run(body(), "dropped workers are not announced")

    def test_each_iteration_starts_from_the_current_workers(
        self, discovery_factory: DiscoveryFactory
    ):
        async def body() -> None:
            discovery = discovery_factory()
            worker = worker_metadata()
            subscriber = discovery.subscriber
            async with discovery.publisher as publisher:
                await publisher.publish(added(worker))
                async with self._iterate(subscriber) as first:
                    seen = await self._next(first, "the first iteration")
                    check(seen == added(worker), f"first iteration: expected the worker, {seen}")
                    async with self._iterate(subscriber) as second:
                        seen = await self._next(second, "a second iteration")
                        check(
                            seen == added(worker),
                            f"a second iteration of one subscriber must start over; saw {seen}",
                        )

        self._run(body(), "each iteration starts from the current workers")

    def test_another_discovery_on_the_same_medium_sees_the_workers(
        self, discovery_factory: DiscoveryFactory
    ):
        async def body() -> None:
            owner, other = discovery_factory(), discovery_factory()
            worker = worker_metadata()
            async with owner.publisher as publisher:
                await publisher.publish(added(worker))
                async with self._events(other) as events:
                    seen = await self._next(events, "a worker of another discovery object")
                    check(seen == added(worker), f"expected {added(worker)}, got {seen}")
                    await publisher.publish(dropped(worker))
                    seen = await self._next(events, "the drop, from another discovery object")
                    check(seen == dropped(worker), f"expected {dropped(worker)}, got {seen}")

        self._run(body(), "two discovery objects on one medium")

    def test_the_subscriber_survives_cloudpickle(self, discovery_factory: DiscoveryFactory):
        async def body() -> None:
            discovery = discovery_factory()
            worker, later = worker_metadata(), worker_metadata()
            try:
                copy = cloudpickle.loads(cloudpickle.dumps(discovery.subscriber))
            except Exception as exc:
                fail(
                    f"the subscriber must pickle (it travels with every task for nested "
                    f"dispatch): {type(exc).__name__}: {exc}"
                )
            check(
                isinstance(copy, DiscoverySubscriberLike),
                f"the unpickled subscriber {copy!r} is not a DiscoverySubscriberLike",
            )
            async with discovery.publisher as publisher:
                await publisher.publish(added(worker))
                async with self._iterate(copy) as events:
                    seen = await self._next(events, "the existing worker, through a copy")
                    check(seen == added(worker), f"expected {added(worker)}, got {seen}")
                    await publisher.publish(added(later))
                    seen = await self._next(events, "a new worker, through a copy")
                    check(seen == added(later), f"expected {added(later)}, got {seen}")
                    await publisher.publish(dropped(worker))
                    seen = await self._next(events, "a drop, through a copy")
                    check(seen == dropped(worker), f"expected {dropped(worker)}, got {seen}")

        self._run(body(), "subscriber pickling")

    def test_leaving_the_publisher_withdraws_its_workers(self, discovery_factory: DiscoveryFactory):
        async def body() -> None:
            discovery = discovery_factory()
            workers = [worker_metadata(), worker_metadata()]
            async with self._events(discovery) as events:
                async with discovery.publisher as publisher:
                    for worker in workers:
                        await publisher.publish(added(worker))
                    seen = {await self._next(events, "published workers") for _ in workers}
                    check(seen == {added(w) for w in workers}, f"unexpected events {seen}")
                seen = {await self._next(events, "the withdrawal at publisher exit")}
                seen.add(await self._next(events, "the withdrawal at publisher exit"))
            check(
                seen == {dropped(w) for w in workers},
                f"leaving the publisher must drop the workers it published; saw {seen}",
            )

        self._run(body(), "publisher exit withdraws its workers")

    def test_closing_the_iterator_releases_what_it_holds(self, discovery_factory: DiscoveryFactory):
        async def body() -> None:
            discovery = discovery_factory()
            async with discovery.publisher as publisher:
                await publisher.publish(added(worker_metadata()))
                before = _Resources.now()
                iterator = aiter(discovery.subscriber)
                close = getattr(iterator, "aclose", None)
                check(
                    close is not None,
                    f"the subscriber's iterator {iterator!r} has no aclose(): wool closes it "
                    "to release what it holds (an async generator has one)",
                )
                await self._next(iterator, "the existing worker")
                await iterator.aclose()  # type: ignore[attr-defined]
                await before.check_released(self.timeout, "a closed subscriber iterator")
                try:
                    extra = await anext(iterator)
                except StopAsyncIteration:
                    pass
                else:
                    fail(f"a closed subscriber iterator still yields: {extra}")
                unstarted = aiter(discovery.subscriber)
                await unstarted.aclose()  # type: ignore[attr-defined]
                await before.check_released(self.timeout, "an iterator closed before use")

        self._run(body(), "closing the iterator releases it")

    # -- helpers --------------------------------------------------------------------

    def _run(self, body: Coroutine[Any, Any, None], what: str) -> None:
        run(body, 6 * self.timeout, what)

    @contextlib.asynccontextmanager
    async def _iterate(
        self, subscriber: DiscoverySubscriberLike
    ) -> AsyncGenerator[AsyncIterator[DiscoveryEvent], None]:
        iterator = aiter(subscriber)
        try:
            yield iterator
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    def _events(self, discovery: DiscoveryLike) -> Any:
        return self._iterate(discovery.subscriber)

    async def _next(self, events: AsyncIterator[DiscoveryEvent], what: str) -> DiscoveryEvent:
        try:
            async with asyncio.timeout(self.timeout):
                event = await anext(events)
        except TimeoutError:
            fail(f"no discovery event within {self.timeout:g}s (waiting for {what})")
        except StopAsyncIteration:
            fail(f"the subscriber's iteration ended (waiting for {what})")
        check(isinstance(event, DiscoveryEvent), f"the subscriber yielded {event!r}")  # pyright: ignore[reportUnnecessaryIsInstance] (the kit checks what the plugin really gives)
        return event

    async def _until(
        self, events: AsyncIterator[DiscoveryEvent], last: DiscoveryEvent
    ) -> list[DiscoveryEvent]:
        seen: list[DiscoveryEvent] = []
        while not seen or seen[-1] != last:
            seen.append(await self._next(events, str(last)))
        return seen


class _Resources:
    """Threads, file descriptors and asyncio tasks of this process at one moment."""

    def __init__(self, threads: set[int], fds: dict[int, str], tasks: set[asyncio.Task[Any]]):
        self.threads = threads
        self.fds = fds
        self.tasks = tasks

    @classmethod
    def now(cls) -> _Resources:
        return cls(
            {t.ident for t in threading.enumerate() if t.ident is not None and _counts(t)},
            _fds(),
            set(asyncio.all_tasks()),
        )

    def leaks(self) -> list[str]:
        current = _Resources.now()
        problems = [
            f"thread {t.name!r}"
            for t in threading.enumerate()
            if t.ident in current.threads - self.threads
        ]
        problems += [
            f"fd {fd} -> {target}"
            for fd, target in current.fds.items()
            if self.fds.get(fd) != target
        ]
        problems += [f"task {t!r}" for t in current.tasks - self.tasks if not t.done()]
        return problems

    async def check_released(self, timeout: float, what: str) -> None:  # noqa: ASYNC109 (public kit: the failure lists what leaked)
        """Wait (up to ``timeout``) until nothing new is left; fail listing what is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while problems := self.leaks():
            if loop.time() > deadline:
                fail(f"{what} left behind: {', '.join(problems)}")
            await asyncio.sleep(0.01)


def _counts(thread: threading.Thread) -> bool:
    # The default executor's threads belong to the event loop, and wool's event thread
    # to wool; neither belongs to the iterator.
    return not thread.name.startswith("asyncio_") and thread.name != "wool-events"


def _fds() -> dict[int, str]:
    folder = Path("/proc/self/fd")
    if not folder.is_dir():
        return {}
    found: dict[int, str] = {}
    for entry in os.listdir(folder):
        with contextlib.suppress(OSError):
            found[int(entry)] = os.readlink(folder / entry)
    return found
