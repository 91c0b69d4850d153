"""Hybrid and durable pools of different processes meeting through LanDiscovery, inside a
loopback-only namespace (the multi-host versions are in tests/multihost)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.discovery_lan.conftest import python
from tests.support import netns
from wool_discovery_lan import ENVIRONMENT_VARIABLE


@contextlib.asynccontextmanager
async def host(
    namespace: netns.Namespace, size: int, *tags: str
) -> AsyncIterator[list[dict[str, Any]]]:
    """A hybrid pool of ``size`` workers in another process; yields their metadata."""
    argv = python(namespace, "-m", "tests.support.lan_host", "127.0.0.1", str(size))
    for tag in tags:
        argv += ["--tag", tag]
    async with netns.spawn(argv) as process:
        yield (await process.line())["workers"]


@contextlib.asynccontextmanager
async def caller(namespace: netns.Namespace, *options: str) -> AsyncIterator[netns.Process]:
    """A durable pool in another process, driven by requests (see tests.support.lan_caller)."""
    argv = python(namespace, "-m", "tests.support.lan_caller", *options)
    async with netns.spawn(argv, env={ENVIRONMENT_VARIABLE: "lo"}) as process:
        assert (await process.line())["ready"]
        yield process


async def test_a_durable_pool_uses_the_workers_of_a_hybrid_pool_elsewhere(
    loopback: netns.Namespace,
):
    async with host(loopback, 2) as workers, caller(loopback, "--interface", "lo") as durable:
        uids = [w["uid"] for w in workers]
        assert (await durable.request("wait", uids=uids, timeout=30))["ok"]
        pids = await durable.request("call", routine="pid", args=[], times=6)
        fib = await durable.request("call", routine="fib", args=[8])
    assert {r["value"] for r in pids["results"]} == {w["pid"] for w in workers}
    assert fib["results"][0]["value"] == 21


async def test_pools_find_each_other_by_the_entry_point_name(loopback: netns.Namespace):
    """``WorkerPool(discovery="lan")``, interfaces from WOOL_LAN_INTERFACES."""
    async with host(loopback, 1) as workers, caller(loopback, "--discovery", "lan") as durable:
        assert (await durable.request("wait", uids=[workers[0]["uid"]], timeout=30))["ok"]
        pids = await durable.request("call", routine="pid", args=[], times=2)
    assert [r["value"] for r in pids["results"]] == [workers[0]["pid"]] * 2


async def test_tags_select_the_pool_that_carries_them(loopback: netns.Namespace):
    async with (
        host(loopback, 1, "gpu") as gpu,
        host(loopback, 1) as plain,
        caller(loopback, "--interface", "lo", "--tag", "gpu") as tagged,
    ):
        assert (await tagged.request("wait", uids=[gpu[0]["uid"]], timeout=30))["ok"]
        routable = await tagged.request("workers")
        pids = await tagged.request("call", routine="pid", args=[], times=4)
    assert [w["uid"] for w in routable["workers"]] == [gpu[0]["uid"]]
    assert {r["value"] for r in pids["results"]} == {gpu[0]["pid"]}
    assert plain[0]["pid"] != gpu[0]["pid"]


async def test_the_workers_of_a_pool_that_leaves_are_dropped(loopback: netns.Namespace):
    async with caller(loopback, "--interface", "lo") as durable:
        async with host(loopback, 1) as staying:
            async with host(loopback, 2) as leaving:
                uids = [w["uid"] for w in staying + leaving]
                assert (await durable.request("wait", uids=uids, timeout=30))["ok"]
            gone = [w["uid"] for w in leaving]
            # the pool said goodbye as it left: far sooner than the records' 60 s TTL
            assert (await durable.request("wait_gone", uids=gone, timeout=10))["ok"]
            pids = await durable.request("call", routine="pid", args=[], times=3)
    assert {r["value"] for r in pids["results"]} == {staying[0]["pid"]}


HYBRID_WITH_DEFAULT_LISTENERS = """
import asyncio, json, wool
from tests.core import routines
async def main():
    discovery = wool.LanDiscovery(interfaces=["127.0.0.1"])
    async with wool.WorkerPool(size=2, discovery=discovery, wait_for_workers=30) as pool:
        workers = [w.metadata.to_dict() for w in pool.workers]
        pids = sorted({await routines.pid() for _ in range(6)})
        print(json.dumps({"workers": workers, "pids": pids}), flush=True)
asyncio.run(main())
"""


async def test_a_hybrid_pool_without_a_host_publishes_loopback_workers(
    loopback: netns.Namespace,
):
    """The contract's ``WorkerPool(size=4, discovery=wool.LanDiscovery())``: LAN records
    carry ``host:port``, never a unix socket, so without ``host`` the spawned workers
    listen on 127.0.0.1, and the pool finds and uses them through the LAN."""
    argv = python(loopback, "-c", HYBRID_WITH_DEFAULT_LISTENERS)
    async with netns.spawn(argv) as process:
        result = await process.line()
    assert all(w["address"].startswith("127.0.0.1:") for w in result["workers"])
    assert result["pids"] == sorted(w["pid"] for w in result["workers"])
