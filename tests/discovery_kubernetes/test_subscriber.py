"""What a subscriber makes of the pool's pods: readiness, termination, deletion,
annotation changes, bookmarks, 410 Gone, closed streams, other pools, hostile records."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import (
    added,
    discovery,
    dropped,
    next_events,
    no_event_until,
    updated,
    worker,
)
from tests.support import conditions
from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_kubernetes import POOL_LABEL, WORKERS_ANNOTATION, _watch, encode_workers


def annotate(api: FakeKubeAPI, pod: str, workers: list[WorkerMetadata] | str) -> None:
    text = workers if isinstance(workers, str) else encode_workers(workers)
    api.update_pod(pod, metadata={"annotations": {WORKERS_ANNOTATION: text}})


def worker_pod(
    api: FakeKubeAPI,
    name: str,
    pool: str,
    workers: list[WorkerMetadata] | str,
    **options: object,
) -> None:
    api.create_pod(name, labels={POOL_LABEL: pool}, **options)
    annotate(api, name, workers)


class Reader:
    """Reads a subscriber's events in a task of its own, as a pool does, so that the
    subscriber keeps its watch open while the test changes the cluster."""

    def __init__(self, events: AsyncIterator[DiscoveryEvent]) -> None:
        self.queue: asyncio.Queue[DiscoveryEvent] = asyncio.Queue()
        self.events = events
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.events:
            self.queue.put_nowait(event)

    async def __anext__(self) -> DiscoveryEvent:
        if self.task.done():
            self.task.result()  # raise what ended the subscriber
        return await self.queue.get()

    def __aiter__(self) -> Reader:
        return self


@contextlib.asynccontextmanager
async def subscribed(kubeconfig: Path, pool: str) -> AsyncIterator[Reader]:
    events = aiter(discovery(kubeconfig, pool).subscriber)
    reader = Reader(events)
    try:
        yield reader
    finally:
        reader.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader.task
        await events.aclose()  # type: ignore[attr-defined]


async def test_ready_not_ready_terminating_and_deleted(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    a, b = worker("a", "127.0.0.1:1001"), worker("b", "127.0.0.2:1002")
    worker_pod(kube_api, "pod-a", pool, [a])
    worker_pod(kube_api, "pod-b", pool, [b], ips=("127.0.0.2",), ready=False)
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 1) == {added(a)}  # pod-b is not ready
        kube_api.set_ready("pod-b", True)
        assert await next_events(events, 1) == {added(b)}
        kube_api.set_ready("pod-a", False)
        assert await next_events(events, 1) == {dropped(a)}
        kube_api.set_ready("pod-a", True)
        assert await next_events(events, 1) == {added(a)}
        kube_api.terminate("pod-a")
        assert await next_events(events, 1) == {dropped(a)}
        kube_api.delete_pod("pod-b")
        assert await next_events(events, 1) == {dropped(b)}
        kube_api.delete_pod("pod-a")  # already dropped when it began terminating
        sentinel = worker("c", "127.0.0.3:1003")
        worker_pod(kube_api, "pod-c", pool, [sentinel], ips=("127.0.0.3",))
        await no_event_until(events, added(sentinel))


async def test_annotation_changes_add_update_and_drop_per_worker(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    a, b = worker("a", "127.0.0.1:1001"), worker("b", "127.0.0.1:1002")
    worker_pod(kube_api, "pod-a", pool, [a, b])
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 2) == {added(a), added(b)}
        a2, c = worker("a", "127.0.0.1:1001", tags={"gpu"}), worker("c", "127.0.0.1:1003")
        annotate(kube_api, "pod-a", [a2, c])
        assert await next_events(events, 3) == {updated(a2), dropped(b), added(c)}
        kube_api.update_pod("pod-a", metadata={"annotations": {WORKERS_ANNOTATION: None}})
        assert await next_events(events, 2) == {dropped(a2), dropped(c)}


async def test_pods_of_another_pool_or_namespace_are_ignored(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    other = worker("other", "127.0.0.2:1001")
    worker_pod(kube_api, "pod-other", "another-pool", [other], ips=("127.0.0.2",))
    kube_api.create_pod("pod-elsewhere", "elsewhere", labels={POOL_LABEL: pool})
    kube_api.update_pod(
        "pod-elsewhere",
        "elsewhere",
        metadata={"annotations": {WORKERS_ANNOTATION: encode_workers([worker("far")])}},
    )
    mine = worker("mine", "127.0.0.1:1001")
    async with subscribed(kubeconfig, pool) as events:
        worker_pod(kube_api, "pod-mine", pool, [mine])
        await no_event_until(events, added(mine))
        # a pod that leaves the pool (label changed) drops its workers
        kube_api.update_pod("pod-mine", metadata={"labels": {POOL_LABEL: "another-pool"}})
        assert await next_events(events, 1) == {dropped(mine)}
        kube_api.update_pod("pod-other", metadata={"labels": {POOL_LABEL: pool}})
        assert await next_events(events, 1) == {added(other)}


async def test_a_bookmark_moves_the_resume_point_without_a_relist(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    a, b = worker("a", "127.0.0.1:1001"), worker("b", "127.0.0.1:1002")
    worker_pod(kube_api, "pod-a", pool, [a])
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 1) == {added(a)}
        await _until(lambda: kube_api.open_watches() == 1)
        kube_api.advance(50)  # other objects of the cluster changed meanwhile
        mark = kube_api.bookmark()
        kube_api.close_watches()  # the stream ends after the bookmark
        annotate(kube_api, "pod-a", [a, b])
        assert await next_events(events, 1) == {added(b)}
        versions = kube_api.watch_versions()
        assert versions[1] == str(mark), f"resumed from {versions[1]}, not the bookmark {mark}"
        assert kube_api.counts()[0] == 1, "the subscriber listed again after a bookmark"


async def test_a_closed_stream_resumes_from_the_last_version_seen(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    a, b = worker("a", "127.0.0.1:1001"), worker("b", "127.0.0.1:1002")
    worker_pod(kube_api, "pod-a", pool, [a])
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 1) == {added(a)}
        await _until(lambda: kube_api.open_watches() == 1)
        last = kube_api.pod("pod-a")["metadata"]["resourceVersion"]
        kube_api.hold_watches()
        kube_api.close_watches()  # the stream ends (server timeout, proxy, restart)
        await _until(lambda: kube_api.held_watches() == 1)
        annotate(kube_api, "pod-a", [a, b])  # a change while the subscriber reconnects
        kube_api.hold_watches(False)
        assert await next_events(events, 1) == {added(b)}
        assert kube_api.watch_versions()[1] == last
        assert kube_api.counts()[0] == 1, "a closed stream must not cost a relist"


async def test_410_gone_relists_and_emits_only_the_difference(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    a, b, c = (worker(u, f"127.0.0.{i}:100{i}") for i, u in enumerate("abc", 1))
    worker_pod(kube_api, "pod-a", pool, [a])
    worker_pod(kube_api, "pod-b", pool, [b], ips=("127.0.0.2",))
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 2) == {added(a), added(b)}
        await _until(lambda: kube_api.open_watches() == 1)
        # changes the watcher never receives, then the history is compacted away
        kube_api.hide_changes()
        kube_api.delete_pod("pod-b")
        worker_pod(kube_api, "pod-c", pool, [c], ips=("127.0.0.3",))
        a2 = worker("a", "127.0.0.1:1001", tags={"v2"})
        annotate(kube_api, "pod-a", [a2])
        kube_api.hide_changes(False)
        kube_api.compact()
        assert await next_events(events, 3) == {dropped(b), added(c), updated(a2)}
        assert kube_api.counts()[0] == 2, "410 Gone must lead to a new list"
        d = worker("d", "127.0.0.3:1004")
        annotate(kube_api, "pod-c", [c, d])
        await no_event_until(events, added(d))


@pytest.mark.parametrize("as_status", [False, True], ids=["error-event", "http-status"])
async def test_a_watch_from_a_compacted_version_relists(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, as_status: bool
):
    kube_api.gone_as_status = as_status  # set before any request: no race with the server
    a, b = worker("a", "127.0.0.1:1001"), worker("b", "127.0.0.1:1002")
    worker_pod(kube_api, "pod-a", pool, [a])
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 1) == {added(a)}
        await _until(lambda: kube_api.open_watches() == 1)
        kube_api.hold_watches()
        kube_api.close_watches()
        await _until(lambda: kube_api.held_watches() == 1)
        annotate(kube_api, "pod-a", [a, b])
        kube_api.compact()  # the version the subscriber resumes from is gone
        kube_api.hold_watches(False)
        assert await next_events(events, 1) == {added(b)}
        assert kube_api.counts()[0] == 2, "a watch answered 410 Gone must lead to a new list"


async def test_hostile_records_are_skipped_one_by_one(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, caplog: pytest.LogCaptureFixture
):
    good = worker("good", "127.0.0.1:1001")
    foreign = worker("foreign", "10.9.9.9:1001")  # not an IP of the pod
    records = [
        good.to_dict(),
        foreign.to_dict(),
        {"uid": "no-pid", "address": "127.0.0.1:2", "version": "1"},
        {"uid": "bad-port", "address": "127.0.0.1:99999", "pid": 1, "version": "1"},
        {"uid": "x" * 5000, "address": "127.0.0.1:2", "pid": 1, "version": "1"},
        "not an object",
        {**worker("tags", "127.0.0.1:3").to_dict(), "tags": "gpu"},
    ]
    text = json.dumps({"version": 1, "workers": records})
    worker_pod(kube_api, "pod-a", pool, text)
    worker_pod(kube_api, "pod-junk", pool, "{not json", ips=("127.0.0.2",))
    worker_pod(kube_api, "pod-huge", pool, "[" + " " * 70_000 + "]", ips=("127.0.0.3",))
    # a pod that claims the uid another pod announced first
    impostor = worker("good", "127.0.0.4:6666")
    async with subscribed(kubeconfig, pool) as events:
        await no_event_until(events, added(good))
        worker_pod(kube_api, "pod-impostor", pool, [impostor], ips=("127.0.0.4",))
        sentinel = worker("sentinel", "127.0.0.1:1009")
        annotate(kube_api, "pod-a", text.replace("[", f"[{json.dumps(sentinel.to_dict())},", 1))
        await no_event_until(events, added(sentinel))
        # when the first pod withdraws the uid, the other claimant takes it over
        annotate(kube_api, "pod-a", [sentinel])
        assert await next_events(events, 1) == {updated(impostor)}
    messages = caplog.text
    for expected in (
        "not an IP of the pod",
        "pid must be",
        "is not host:port",
        "record larger than",
        "must be a JSON object",
        "tags must be",
        "malformed",
        "annotation larger than",
    ):
        assert expected in messages, f"no log saying {expected!r}"


async def _until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (checked every 10 ms, at most 10 s)."""
    await conditions.until(condition, "the fake API server's state changes")


async def test_a_refused_subscriber_says_why_and_tries_again(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, caplog: pytest.LogCaptureFixture
):
    a = worker("a", "127.0.0.1:1001")
    worker_pod(kube_api, "pod-a", pool, [a])
    accepted = kube_api.token
    kube_api.set_token("another-token")  # as if the Role binding were missing
    async with subscribed(kubeconfig, pool) as events:
        await _until(lambda: kube_api.counts()[0] >= 2)  # refused, and asked again
        assert "HTTP 401" in caplog.text and "needs a Role" in caplog.text
        kube_api.set_token(accepted)
        await no_event_until(events, added(a))


async def test_a_bad_record_is_reported_once_not_on_every_status_update(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, caplog: pytest.LogCaptureFixture
):
    good, foreign = worker("good", "127.0.0.1:1001"), worker("foreign", "10.9.9.9:1001")
    worker_pod(kube_api, "pod-a", pool, [good, foreign])
    async with subscribed(kubeconfig, pool) as events:
        await no_event_until(events, added(good))
        for probe in range(3):  # the kubelet updates the pod's status
            kube_api.update_pod("pod-a", status={"message": f"probe {probe}"})
        sentinel = worker("sentinel", "127.0.0.2:1001")
        worker_pod(kube_api, "pod-b", pool, [sentinel], ips=("127.0.0.2",))
        await no_event_until(events, added(sentinel))  # the updates were read before it
    assert caplog.text.count("is not an IP of the pod") == 1, caplog.text


async def test_a_long_list_is_read_page_by_page(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(_watch, "LIST_PAGE", 2)
    published = [worker(f"w{i}", f"127.0.0.{i}:1000") for i in range(1, 6)]
    for i, one in enumerate(published, 1):
        worker_pod(kube_api, f"pod-{i}", pool, [one], ips=(f"127.0.0.{i}",))
    async with subscribed(kubeconfig, pool) as events:
        assert await next_events(events, 5) == {added(w) for w in published}
    assert kube_api.counts()[0] == 3, "5 pods in pages of 2 take 3 list requests"
