"""examples/kubernetes on a real cluster (opt-in, marker ``k8s``).

Runs only when ``KUBECONFIG`` names a kubeconfig file of a reachable cluster, ``kubectl``
is on PATH and ``WOOL_K8S_IMAGE`` names an image built from
examples/kubernetes/Dockerfile that the cluster can pull (with kind:
``docker build -f examples/kubernetes/Dockerfile -t wool-demo:dev . && kind load
docker-image wool-demo:dev``, then ``WOOL_K8S_IMAGE=wool-demo:dev``). It deploys the
example in a namespace of its own, checks from outside the cluster that the worker pods
publish their workers, runs the caller Job, reads what it printed, and deletes the
namespace.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from wool_discovery_kubernetes import KubernetesDiscovery

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]


def _requirements() -> str | None:
    """Why this test cannot run here, or ``None``."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        return "needs a real Kubernetes cluster: KUBECONFIG is not set"
    if not all(Path(p).is_file() for p in kubeconfig.split(os.pathsep)):
        return f"needs a real Kubernetes cluster: KUBECONFIG {kubeconfig!r} is not a file"
    if shutil.which("kubectl") is None:
        return "needs kubectl on PATH to deploy examples/kubernetes"
    if not os.environ.get("WOOL_K8S_IMAGE"):
        return "set WOOL_K8S_IMAGE to an image built from examples/kubernetes/Dockerfile"
    if shutil.which("openssl") is None:
        return "needs openssl for examples/kubernetes/make-certs.sh"
    probe = subprocess.run(
        ["kubectl", "version", "--request-timeout=10s"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        return f"the cluster of KUBECONFIG does not answer: {probe.stderr.decode()[-300:]}"
    return None


def kubectl(*args: str, namespace: str | None = None, stdin: str | None = None) -> str:
    command = ["kubectl", *(("-n", namespace) if namespace else ()), *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=360)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
    return result.stdout


def with_image(name: str, image: str) -> str:
    """A manifest file with its containers' image replaced."""
    with open(EXAMPLE / name) as file:
        objects = [d for d in yaml.safe_load_all(file) if d]
    for obj in objects:
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container["image"] = image
    return yaml.safe_dump_all(objects)


def test_the_example_deploys_and_its_caller_dispatches_to_the_worker_pods(tmp_path: Path):
    reason = _requirements()
    if reason is not None:
        pytest.skip(reason)
    image = os.environ["WOOL_K8S_IMAGE"]
    namespace = f"wool-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    try:
        certs = tmp_path / "certs"
        subprocess.run(["sh", str(EXAMPLE / "make-certs.sh"), str(certs)], check=True, timeout=60)
        files = ("ca.pem", "worker-cert.pem", "worker-key.pem", "client-cert.pem", "client-key.pem")
        kubectl(
            "create",
            "secret",
            "generic",
            "wool-tls",
            *(f"--from-file={certs / f}" for f in files),
            namespace=namespace,
        )
        kubectl(
            "create",
            "configmap",
            "wool-demo-app",
            f"--from-file={EXAMPLE / 'app'}",
            namespace=namespace,
        )
        kubectl("apply", "-f", str(EXAMPLE / "rbac.yaml"), namespace=namespace)
        kubectl("apply", "-f", "-", namespace=namespace, stdin=with_image("workers.yaml", image))
        kubectl(
            "rollout", "status", "deployment/wool-workers", "--timeout=300s", namespace=namespace
        )

        # from outside the cluster, through the kubeconfig: the pods' workers are listed
        found = asyncio.run(_workers(namespace, expected=4))
        pod_ips = set(
            kubectl(
                "get",
                "pods",
                "-l",
                "app=wool-workers",
                "-o",
                "jsonpath={.items[*].status.podIP}",
                namespace=namespace,
            ).split()
        )
        assert {address.rpartition(":")[0] for address in found} == pod_ips

        kubectl("apply", "-f", "-", namespace=namespace, stdin=with_image("caller.yaml", image))
        kubectl(
            "wait",
            "--for=condition=complete",
            "job/wool-caller",
            "--timeout=300s",
            namespace=namespace,
        )
        logs = kubectl("logs", "job/wool-caller", namespace=namespace)
        assert "sum of squares 1..8 = 204" in logs, logs
        assert "computed on 2 pods" in logs, logs
    finally:
        kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s")


async def _workers(namespace: str, expected: int) -> set[str]:
    """The addresses of the first ``expected`` workers the subscriber announces."""
    addresses: set[str] = set()
    events = aiter(KubernetesDiscovery("demo", kube_namespace=namespace).subscriber)
    try:
        async with asyncio.timeout(120):
            while len(addresses) < expected:
                event = await anext(events)
                if event.type == "worker-added":
                    addresses.add(event.metadata.address)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return addresses
