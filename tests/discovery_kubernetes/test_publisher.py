"""What the publisher writes on its pod: the label and the annotation, overwritten at
start, removed at exit; and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import (
    added,
    discovery,
    dropped,
    next_events,
    updated,
    worker,
)
from wool_discovery_kubernetes import (
    POD_IP_VARIABLE,
    POD_NAME_VARIABLE,
    POD_NAMESPACE_VARIABLE,
    POOL_LABEL,
    WORKERS_ANNOTATION,
    KubernetesDiscovery,
    PublishError,
    decode_workers,
    encode_workers,
)


def annotation(api: FakeKubeAPI, pod: str = "worker-0") -> str | None:
    return (api.pod(pod)["metadata"].get("annotations") or {}).get(WORKERS_ANNOTATION)


async def test_a_restarted_container_replaces_what_the_last_one_left(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    stale = worker("stale", "127.0.0.1:7000")
    kube_api.create_pod("worker-0", labels={POOL_LABEL: pool})
    # the previous container was killed: its record is still on the pod
    kube_api.update_pod(
        "worker-0", metadata={"annotations": {WORKERS_ANNOTATION: encode_workers([stale])}}
    )
    found = discovery(kubeconfig, pool)
    fresh = worker("fresh", "127.0.0.1:7001")
    async with found.publisher as publisher:
        assert decode_workers(annotation(kube_api)) == {}
        await publisher.publish(added(fresh))
        events = aiter(found.subscriber)
        try:
            assert await next_events(events, 1) == {added(fresh)}
        finally:
            await events.aclose()  # type: ignore[attr-defined]
    assert annotation(kube_api) is None
    assert kube_api.pod("worker-0")["metadata"]["labels"][POOL_LABEL] == pool


async def test_each_event_rewrites_the_annotation(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    kube_api.create_pod("worker-0")
    one, two = worker("one", "127.0.0.1:7001"), worker("two", "127.0.0.1:7002")
    one_v2 = worker("one", "127.0.0.1:7001", tags={"v2"})
    async with discovery(kubeconfig, pool).publisher as publisher:
        await publisher.publish(added(one))
        await publisher.publish(added(two))
        await publisher.publish(updated(one_v2))
        assert decode_workers(annotation(kube_api)) == {"one": one_v2, "two": two}
        await publisher.publish(dropped(two))
        document = json.loads(annotation(kube_api) or "")
        assert document == {"version": 1, "workers": [one_v2.to_dict()]}


async def test_an_oversized_record_is_refused_before_any_request(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    kube_api.create_pod("worker-0")
    async with discovery(kubeconfig, pool).publisher as publisher:
        await publisher.publish(added(worker("one")))
        patches = sum(1 for method, _, _ in kube_api.requests if method == "PATCH")
        huge = worker("huge", tags={f"tag-{i:04d}-" + "x" * 40 for i in range(60)})
        with pytest.raises(ValueError, match="use fewer or shorter tags"):
            await publisher.publish(added(huge))
        assert sum(1 for method, _, _ in kube_api.requests if method == "PATCH") == patches
        assert set(decode_workers(annotation(kube_api))) == {"one"}


async def test_a_pod_that_does_not_exist_is_named_in_the_error(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    with pytest.raises(PublishError, match=r"pod wool/nowhere: HTTP 404.*WOOL_POD_NAME"):
        async with discovery(kubeconfig, pool, pod="nowhere").publisher:
            pass


async def test_the_pod_identity_comes_from_the_downward_api_variables(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
):
    kube_api.create_pod("from-env-0", "team-a")
    monkeypatch.setenv(POD_NAME_VARIABLE, "from-env-0")
    monkeypatch.setenv(POD_NAMESPACE_VARIABLE, "team-a")
    async with KubernetesDiscovery(pool, kubeconfig=kubeconfig).publisher as publisher:
        await publisher.publish(added(worker("one")))
        pod = kube_api.pod("from-env-0", "team-a")
        assert set(decode_workers(pod["metadata"]["annotations"][WORKERS_ANNOTATION])) == {"one"}


async def test_using_a_publisher_before_entering_it_is_an_error(kubeconfig: Path, pool: str):
    with pytest.raises(RuntimeError, match="not entered"):
        await discovery(kubeconfig, pool).publisher.publish(added(worker("one")))


async def test_a_busy_api_server_is_tried_again_then_reported(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    kube_api.create_pod("worker-0")
    async with discovery(kubeconfig, pool).publisher as publisher:
        kube_api.fail_patches(2)
        await publisher.publish(added(worker("one")))
        assert set(decode_workers(annotation(kube_api))) == {"one"}
        kube_api.fail_patches(10)
        with pytest.raises(PublishError, match="HTTP 503"):
            await publisher.publish(added(worker("two")))
        assert set(decode_workers(annotation(kube_api))) == {"one"}
        kube_api.fail_patches(0)
        await publisher.publish(added(worker("three")))
        assert set(decode_workers(annotation(kube_api))) == {"one", "three"}


async def test_a_worker_that_does_not_advertise_the_pod_ip_is_flagged(
    kube_api: FakeKubeAPI,
    kubeconfig: Path,
    pool: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    kube_api.create_pod("worker-0", ips=("10.244.0.5",))
    monkeypatch.setenv(POD_IP_VARIABLE, "10.244.0.5")
    async with discovery(kubeconfig, pool).publisher as publisher:
        await publisher.publish(added(worker("right", "10.244.0.5:48100")))
        assert "advertises" not in caplog.text
        await publisher.publish(added(worker("wrong", "127.0.0.1:48101")))
    assert "worker wrong advertises 127.0.0.1:48101, not the pod's IP 10.244.0.5" in caplog.text
    assert "--advertise $(WOOL_POD_IP)" in caplog.text
