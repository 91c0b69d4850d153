"""examples/kubernetes, checked offline: the manifests follow the Kubernetes schemas
(kubernetes-validate, strict: no unknown field) and fit together (kinds, labels and
selector, Downward API environment, the Role's exact permissions, the TLS Secret), and
the walkthrough's certificates serve mutual TLS between real wool processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import wool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
DOWNWARD = {
    "WOOL_POD_NAME": "metadata.name",
    "WOOL_POD_NAMESPACE": "metadata.namespace",
    "WOOL_POD_IP": "status.podIP",
}


def documents(name: str) -> dict[str, dict[str, Any]]:
    """The objects of one manifest file, by kind."""
    with open(EXAMPLE / name) as file:
        found = [d for d in yaml.safe_load_all(file) if d]
    by_kind = {d["kind"]: d for d in found}
    assert len(by_kind) == len(found), f"{name}: one object of each kind expected"
    return by_kind


def option(command: list[str], flag: str) -> str:
    assert command.count(flag) == 1, f"{flag} must appear once in {command}"
    return command[command.index(flag) + 1]


def mounted_secret_files(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Paths in the container -> keys of the Secret behind them."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert secret["secretName"] == "wool-tls"
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = item["key"]
    return files


@pytest.mark.parametrize("name", ["rbac.yaml", "workers.yaml", "caller.yaml"])
def test_the_manifests_follow_the_kubernetes_schemas(name: str):
    validator = pytest.importorskip(
        "kubernetes_validate", reason="needs kubernetes-validate (nox -s tests installs it)"
    )
    for kind, obj in documents(name).items():
        try:
            validator.validate(obj, validator.latest_version(), strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{name}: {kind} does not follow the schema: {exc.message}")


def test_the_role_grants_exactly_what_discovery_needs():
    rbac = documents("rbac.yaml")
    assert set(rbac) == {"ServiceAccount", "Role", "RoleBinding"}
    assert rbac["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]}
    ]
    binding = rbac["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": rbac["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": rbac["ServiceAccount"]["metadata"]["name"]}
    ]
    every = [d for name in ("rbac.yaml", "workers.yaml", "caller.yaml") for d in documents(name)]
    assert not {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} & set(every)


def test_the_worker_deployment_publishes_its_pods_to_the_pool():
    deployment = documents("workers.yaml")["Deployment"]
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spec = template["spec"]
    assert (
        spec["serviceAccountName"] == documents("rbac.yaml")["ServiceAccount"]["metadata"]["name"]
    )
    (container,) = spec["containers"]
    command = container["command"]
    assert command[:2] == ["wool", "worker"]
    assert option(command, "--discovery") == "kubernetes"
    assert labels["wool.dev/pool"] == option(command, "--namespace")
    env = {e["name"]: e for e in container["env"]}
    for name, field in DOWNWARD.items():
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == field
    assert option(command, "--host") == "0.0.0.0"
    assert option(command, "--advertise") == "$(WOOL_POD_IP)"
    # mutual TLS from the Secret: no plaintext listener off loopback, no --insecure
    assert "--insecure" not in command
    files = mounted_secret_files(spec, container)
    assert files[option(command, "--ca")] == "ca.pem"
    assert files[option(command, "--cert")] == "worker-cert.pem"
    assert files[option(command, "--key")] == "worker-key.pem"
    probe = container["readinessProbe"]["tcpSocket"]["port"]
    assert probe == int(option(command, "--port"))


def test_the_caller_job_uses_the_same_pool_account_and_secret():
    job = documents("caller.yaml")["Job"]
    spec = job["spec"]["template"]["spec"]
    workers = documents("workers.yaml")["Deployment"]["spec"]["template"]
    assert spec["serviceAccountName"] == workers["spec"]["serviceAccountName"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["command"] == ["python", "/app/caller.py"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WOOL_POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    files = set(mounted_secret_files(spec, container).values())
    assert files == {"ca.pem", "client-cert.pem", "client-key.pem"}
    apps = {
        v["configMap"]["name"]
        for s in (spec, workers["spec"])
        for v in s["volumes"]
        if "configMap" in v
    }
    assert len(apps) == 1, "the caller and the workers must mount the same code"
    caller = (EXAMPLE / "app" / "caller.py").read_text()
    pool = workers["metadata"]["labels"]["wool.dev/pool"]
    assert f'os.environ.get("WOOL_POOL", "{pool}")' in caller
    assert 'server_name="wool-worker"' in caller
    assert "DNS:wool-worker" in (EXAMPLE / "make-certs.sh").read_text()


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to run examples/kubernetes/make-certs.sh")
    subprocess.run(
        ["sh", str(EXAMPLE / "make-certs.sh"), str(tmp_path / "certs")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return tmp_path / "certs"


async def test_the_walkthrough_certificates_serve_mutual_tls(
    certificates: Path, monkeypatch: pytest.MonkeyPatch
):
    # the walkthrough's material, as workers.yaml and caller.py use it; the workers here
    # are local processes found through LocalDiscovery
    monkeypatch.syspath_prepend(str(EXAMPLE / "app"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXAMPLE / "app"), *sys.path]))
    import demo_routines

    worker = wool.WorkerCredentials.from_files(
        ca_path=certificates / "ca.pem",
        cert_path=certificates / "worker-cert.pem",
        key_path=certificates / "worker-key.pem",
        server_name="wool-worker",
    )
    caller = wool.WorkerCredentials.from_files(
        ca_path=certificates / "ca.pem",
        cert_path=certificates / "client-cert.pem",
        key_path=certificates / "client-key.pem",
        server_name="wool-worker",
    )
    namespace = f"k8s-example-{os.getpid()}"
    async with wool.WorkerPool(
        size=1, discovery=wool.LocalDiscovery(namespace), credentials=worker
    ):
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace), credentials=caller):
            assert (await demo_routines.square(7))[1] == 49
