"""`wool worker --discovery etcd` and `wool workers --discovery etcd` with their options."""

from __future__ import annotations

import json
import signal

from tests.cli.helpers import run, running
from tests.discovery_etcd._etcd import EtcdServer
from tests.discovery_etcd.conftest import worker_keys


async def test_the_etcd_options_are_in_the_help():
    result = await run("worker", "--discovery", "etcd", "--help")
    assert result.returncode == 0
    for option in ("--etcd-endpoints", "--etcd-ttl", "--etcd-ca", "--etcd-user"):
        assert option in result.stdout


async def test_a_bad_endpoint_is_a_usage_error():
    result = await run("worker", "--discovery", "etcd", "--etcd-endpoints", "ftp://h:1")
    assert result.returncode == 2
    assert "bad etcd endpoint 'ftp://h:1'" in result.stderr


async def test_workers_published_by_the_command_are_watched_and_withdrawn(
    etcd: EtcdServer, namespace: str
):
    options = ["--discovery", "etcd", "--etcd-endpoints", etcd.endpoint, "--namespace", namespace]
    tcp = ["--host", "127.0.0.1"]  # etcd records carry host:port, never a unix socket
    async with running("worker", *options, *tcp, "--size", "2", "--etcd-ttl", "3") as command:
        workers = await command.ready()
        leases = json.loads(
            etcd.etcdctl("get", "--prefix", f"/wool/{namespace}/workers/", "-w", "json")
        )
        lease = leases["kvs"][0]["lease"]
        granted = json.loads(etcd.etcdctl("lease", "timetolive", f"{lease:x}", "-w", "json"))
        assert granted["granted-ttl"] == 3
        async with running("workers", *options, "--watch", "--json") as watch:
            added = [json.loads(await watch.line()) for _ in workers]
            command.send_signal(signal.SIGTERM)
            dropped = [json.loads(await watch.line()) for _ in workers]
            assert (await command.finish()).returncode == 0
            watch.send_signal(signal.SIGINT)
            assert (await watch.finish()).returncode == 0
    uids = {w.uid for w in workers}
    assert {e["type"] for e in added} == {"worker-added"}
    assert {e["metadata"]["uid"] for e in added} == uids
    assert {e["type"] for e in dropped} == {"worker-dropped"}
    assert {e["metadata"]["uid"] for e in dropped} == uids
    assert worker_keys(etcd, namespace) == []
