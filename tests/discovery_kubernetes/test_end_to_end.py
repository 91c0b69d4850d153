"""Real `wool worker` processes publish on their pods through the (fake) API server; a
real WorkerPool finds them through the same server and dispatches to them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import wool
from tests.cli.helpers import run, running
from tests.core import routines as r
from tests.discovery_kubernetes._fake_api import FakeKubeAPI
from tests.discovery_kubernetes.conftest import KUBE_NAMESPACE
from wool_discovery_kubernetes import (
    POOL_LABEL,
    WORKERS_ANNOTATION,
    KubernetesDiscovery,
    decode_workers,
)

WAIT = 30.0


def _worker_command(pool: str, pod: str, kubeconfig: Path) -> tuple[str, ...]:
    return (
        "worker",
        "--size",
        "2",
        "--discovery",
        "kubernetes",
        "--namespace",
        pool,
        "--kube-namespace",
        KUBE_NAMESPACE,
        "--pod-name",
        pod,
        "--kubeconfig",
        str(kubeconfig),
        "--host",  # pod records carry host:port, never a unix socket
        "127.0.0.1",
    )


def _annotated_uids(api: FakeKubeAPI, pod: str) -> set[str]:
    annotations = api.pod(pod)["metadata"].get("annotations") or {}
    if WORKERS_ANNOTATION not in annotations:
        return set()
    return set(decode_workers(annotations[WORKERS_ANNOTATION]))


async def test_a_pool_dispatches_to_worker_pods_found_through_the_api(
    kube_api: FakeKubeAPI, kubeconfig: Path, pool: str
):
    for pod in ("worker-0", "worker-1"):
        kube_api.create_pod(pod, labels={POOL_LABEL: pool})
    async with (
        running(*_worker_command(pool, "worker-0", kubeconfig)) as first,
        running(*_worker_command(pool, "worker-1", kubeconfig)) as second,
    ):
        workers = {"worker-0": await first.ready(), "worker-1": await second.ready()}
        for pod, started in workers.items():
            assert _annotated_uids(kube_api, pod) == {w.uid for w in started}
        everyone = {w.uid for started in workers.values() for w in started}
        listing = await run(
            "workers",
            "--discovery",
            "kubernetes",
            "--namespace",
            pool,
            "--kube-namespace",
            KUBE_NAMESPACE,
            "--kubeconfig",
            str(kubeconfig),
            "--json",
            "--wait",
            "1",
        )
        assert listing.returncode == 0, listing.stderr
        assert {record["uid"] for record in json.loads(listing.stdout)} == everyone
        found = KubernetesDiscovery(pool, kube_namespace=KUBE_NAMESPACE, kubeconfig=kubeconfig)
        async with wool.WorkerPool(discovery=found) as workerpool:
            assert workerpool.proxy is not None
            await workerpool.proxy.wait_for(everyone, timeout=WAIT)
            pids = {await r.pid() for _ in range(12)}
            assert pids == {w.pid for started in workers.values() for w in started}
            # workers dispatch nested routines through the subscriber that travelled
            # with the task: they reach the API server from their own processes
            assert await r.fib(5) == 5

            # the readiness probe of worker-1 fails: its workers leave the pool
            kube_api.set_ready("worker-1", False)
            kept = {w.uid for w in workers["worker-0"]}
            await workerpool.proxy.wait_until(
                lambda current: {m.uid for m in current} == kept, timeout=WAIT
            )
            assert {await r.pid() for _ in range(6)} == {w.pid for w in workers["worker-0"]}

            # worker-0 stops cleanly: it withdraws its workers from its pod
            first.send_signal(signal.SIGTERM)
            result = await first.finish()
            assert result.returncode == 0, result.stderr
            assert _annotated_uids(kube_api, "worker-0") == set()
            assert WORKERS_ANNOTATION not in (
                kube_api.pod("worker-0")["metadata"].get("annotations") or {}
            )
            await workerpool.proxy.wait_until(lambda current: not current, timeout=WAIT)
