"""A 3-member etcd cluster on loopback: with one member killed, discovery and dispatch
carry on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import wool
from tests.core import routines
from tests.discovery_etcd._etcd import EtcdServer, cluster
from tests.support.events import added, dropped, following
from wool.testing import worker_metadata as metadata
from wool_discovery_etcd import EtcdDiscovery

WAIT = 30.0


def lease_remaining(member: EtcdServer, lease: int) -> int:
    out = json.loads(member.etcdctl("lease", "timetolive", f"{lease:x}", "-w", "json"))
    return out["ttl"]


def record_lease(member: EtcdServer, namespace: str) -> int:
    out = json.loads(member.etcdctl("get", "--prefix", f"/wool/{namespace}/workers/", "-w", "json"))
    leases = {kv["lease"] for kv in out["kvs"]}
    assert len(leases) == 1, leases
    return leases.pop()


async def refreshed(member: EtcdServer, lease: int) -> None:
    """Until the lease's remaining time goes up: a keep-alive reached the cluster."""
    lowest = lease_remaining(member, lease)
    async with asyncio.timeout(WAIT):
        while (remaining := lease_remaining(member, lease)) <= lowest:
            assert remaining > 0, "the lease expired"
            lowest = min(lowest, remaining)
            await asyncio.sleep(0.1)


async def test_with_one_member_of_three_killed_discovery_and_dispatch_carry_on(tmp_path: Path):
    with cluster(tmp_path) as members:
        first, survivor = members[0], members[1]
        d = EtcdDiscovery("cluster", endpoints=[m.endpoint for m in members])
        async with (
            wool.WorkerPool(size=2, discovery=d) as pool,
            following(d.subscriber) as events,
        ):
            spawned = [w.metadata for w in pool.workers if w.metadata]
            assert set(await events.take(2)) == {added(w) for w in spawned}
            lease = record_lease(survivor, "cluster")
            first.kill()  # the member every client of the pool talks to first
            await refreshed(survivor, lease)
            newcomer = metadata()
            async with EtcdDiscovery(
                "cluster", endpoints=[m.endpoint for m in members]
            ).publisher as publisher:
                await publisher.publish(added(newcomer))
                assert await events.next(WAIT) == added(newcomer)
            assert await events.next(WAIT) == dropped(newcomer)
            pids = {await routines.pid() for _ in range(8)}
            assert pids == {w.pid for w in spawned}
            assert record_lease(survivor, "cluster") == lease
            assert events.pending() == []
