"""Real pools meeting through etcd: a hybrid pool, and a durable pool dispatching to
`wool worker --discovery etcd` processes."""

from __future__ import annotations

import signal

import pytest

import wool
from tests.cli.helpers import running
from tests.core import routines
from tests.discovery_etcd._etcd import EtcdServer
from tests.discovery_etcd.conftest import worker_keys
from wool_discovery_etcd import EtcdDiscovery

WAIT = 60.0


async def test_a_hybrid_pool_publishes_its_workers_and_dispatches_to_them(
    etcd: EtcdServer, namespace: str
):
    discovery = EtcdDiscovery(namespace, endpoints=[etcd.endpoint])
    async with wool.WorkerPool(size=2, discovery=discovery) as pool:
        spawned = {w.metadata.pid for w in pool.workers if w.metadata}
        assert len(worker_keys(etcd, namespace)) == 2
        pids = {await routines.pid() for _ in range(8)}
        assert await routines.add(20, 22) == 42
    assert pids == spawned and len(spawned) == 2


def test_wool_resolves_etcd_discovery_lazily():
    assert wool.EtcdDiscovery is EtcdDiscovery


async def test_a_durable_pool_dispatches_to_wool_worker_processes(
    own_etcd: EtcdServer, monkeypatch: pytest.MonkeyPatch
):
    """`wool worker --discovery etcd` and `WorkerPool(discovery="etcd")` meet in the
    default namespace, both configured by WOOL_ETCD_ENDPOINTS."""
    env = {"WOOL_ETCD_ENDPOINTS": own_etcd.endpoint}
    monkeypatch.setenv("WOOL_ETCD_ENDPOINTS", own_etcd.endpoint)
    command = ["worker", "--discovery", "etcd", "--size", "1", "--host", "127.0.0.1"]
    async with running(*command, env=env) as first, running(*command, env=env) as second:
        workers = await first.ready() + await second.ready()
        async with wool.WorkerPool(discovery="etcd", wait_for_workers=WAIT) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([w.uid for w in workers], timeout=WAIT)
            pids = {await routines.pid() for _ in range(8)}
            assert pids == {w.pid for w in workers}
            # a clean stop withdraws at once; a killed command's lease expires
            first.send_signal(signal.SIGTERM)
            assert (await first.finish()).returncode == 0
            gone = {workers[0].uid}
            await pool.proxy.wait_until(lambda ws: not gone & {m.uid for m in ws}, 0.5 + 1)
            second.send_signal(signal.SIGKILL)
            await second.finish()
            gone.add(workers[1].uid)
            await pool.proxy.wait_until(lambda ws: not gone & {m.uid for m in ws}, 5 + 1)
    assert worker_keys(own_etcd, "default") == []
