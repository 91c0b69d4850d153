"""Reaching the API: in-cluster service accounts and kubeconfigs over TLS, the pod's
identity from the Downward API environment, and the errors that name what is missing."""

from __future__ import annotations

import contextlib
import pickle
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import (
    KUBE_NAMESPACE,
    TOKEN,
    added,
    dropped,
    next_events,
    worker,
    write_kubeconfig,
)
from wool_discovery_kubernetes import (
    POD_NAME_VARIABLE,
    POD_NAMESPACE_VARIABLE,
    KubernetesConfigError,
    KubernetesDiscovery,
    PublishError,
    _config,
)


@contextlib.contextmanager
def https_api(ca: trustme.CA) -> Iterator[FakeKubeAPI]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    api = FakeKubeAPI(token=TOKEN, ssl_context=context).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, trustme.CA, FakeKubeAPI]]:
    """A pod's view of its cluster: KUBERNETES_SERVICE_HOST/PORT, and a token, CA
    certificate and namespace file where Kubernetes mounts them (here a temporary
    folder), served over HTTPS by the fake API server."""
    ca = trustme.CA()
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text(TOKEN)
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    (folder / "namespace").write_text(KUBE_NAMESPACE)
    with https_api(ca) as api:
        monkeypatch.setattr(_config, "SERVICE_ACCOUNT_DIR", folder)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.delenv(POD_NAMESPACE_VARIABLE, raising=False)
        monkeypatch.setenv(POD_NAME_VARIABLE, "worker-0")
        yield folder, ca, api


async def _round_trip(found: KubernetesDiscovery, api: FakeKubeAPI) -> None:
    """Publish a worker with ``found`` and see it (and its withdrawal) through it."""
    api.create_pod("worker-0")
    one = worker("w-1")
    events = aiter(found.subscriber)
    try:
        async with found.publisher as publisher:
            await publisher.publish(added(one))
            assert await next_events(events, 1) == {added(one)}
        assert await next_events(events, 1) == {dropped(one)}
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_in_cluster_service_account_over_tls(service_account):
    _, _, api = service_account
    # no kubeconfig, no namespace, no pod name: all from the pod's environment
    await _round_trip(KubernetesDiscovery("gpu"), api)
    pod = api.pod("worker-0")
    assert pod["metadata"]["labels"]["wool.dev/pool"] == "gpu"
    assert any(path.endswith("/namespaces/wool/pods") for _, path, _ in api.requests)


async def test_in_cluster_rejects_a_server_its_ca_did_not_sign(service_account):
    folder, _, api = service_account
    trustme.CA().cert_pem.write_to_path(str(folder / "ca.crt"))  # another CA
    api.create_pod("worker-0")
    with pytest.raises(PublishError, match="certificate verify failed.*check the cluster CA"):
        async with KubernetesDiscovery("gpu").publisher:
            pass
    assert "wool.dev/pool" not in api.pod("worker-0")["metadata"]["labels"]


async def test_in_cluster_with_a_wrong_token_names_the_failure(service_account):
    folder, _, api = service_account
    (folder / "token").write_text("not-the-token")
    api.create_pod("worker-0")
    with pytest.raises(Exception, match="cannot patch pod wool/worker-0: HTTP 401"):
        async with KubernetesDiscovery("gpu").publisher:
            pass


async def test_kubeconfig_over_tls_with_its_context_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv(POD_NAMESPACE_VARIABLE, raising=False)
    with https_api(ca) as api:
        path = write_kubeconfig(tmp_path / "config", api.url, TOKEN, ca=ca_file)
        monkeypatch.setenv("KUBECONFIG", str(path))
        # KUBECONFIG and its context's namespace ("wool"); the pod name is explicit
        await _round_trip(KubernetesDiscovery(pod_name="worker-0"), api)


def test_the_namespace_comes_from_the_environment_first(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(POD_NAMESPACE_VARIABLE, raising=False)
    assert _config.resolve_namespace(None, str(kubeconfig), None) == KUBE_NAMESPACE
    monkeypatch.setenv(POD_NAMESPACE_VARIABLE, "from-env")
    assert _config.resolve_namespace(None, str(kubeconfig), None) == "from-env"
    assert _config.resolve_namespace("explicit", str(kubeconfig), None) == "explicit"


async def test_a_publisher_without_a_pod_name_says_which_variable_to_set(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(POD_NAME_VARIABLE, raising=False)
    found = KubernetesDiscovery(kube_namespace=KUBE_NAMESPACE, kubeconfig=kubeconfig)
    with pytest.raises(KubernetesConfigError, match=POD_NAME_VARIABLE):
        async with found.publisher:
            pass


async def test_no_configuration_at_all_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    events = aiter(KubernetesDiscovery().subscriber)
    with pytest.raises(KubernetesConfigError, match="no usable Kubernetes configuration"):
        await anext(events)


@pytest.mark.parametrize("namespace", ["", "-x", "a" * 64, "with space", "ü"])
def test_a_namespace_that_is_no_label_value_is_refused(namespace: str):
    with pytest.raises(ValueError, match="cannot be a Kubernetes label value"):
        KubernetesDiscovery(namespace)


def test_the_discovery_and_its_subscriber_pickle_with_their_settings(kubeconfig: Path):
    found = KubernetesDiscovery("gpu", kube_namespace="ml", pod_name="p", kubeconfig=kubeconfig)
    copy = pickle.loads(pickle.dumps(found))
    assert copy.subscriber == found.subscriber
    assert pickle.loads(pickle.dumps(found.subscriber)) == found.subscriber
    assert copy.namespace == "gpu" and copy.kube_namespace == "ml"
