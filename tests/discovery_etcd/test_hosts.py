"""Across hosts: workers on three network-namespace hosts register with one etcd, and a
caller on a fourth (where etcd runs) dispatches to all of them over mutual TLS; a host cut
off from the network is dropped once its lease expires."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.discovery_etcd._etcd import EtcdServer, running
from tests.support import netns

TTL = 3
HOSTS = ("alpha", "beta", "gamma")


@pytest.fixture
def hosts() -> Iterator[netns.Network]:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with netns.network(*HOSTS, "caller") as network:
        yield network
    names = [network.switch.name, *(h.namespace.name for h in network.hosts.values())]
    assert not set(names) & set(netns.namespaces(netns.RUN)), "namespaces left behind"


@pytest.fixture
def certs(hosts: netns.Network, tmp_path: Path) -> Path:
    """One certificate for every host (the workers' and the caller's), from a test CA."""
    folder = tmp_path / "certs"
    folder.mkdir()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    leaf = ca.issue_cert(*(h.address for h in hosts.hosts.values()))
    leaf.private_key_pem.write_to_path(str(folder / "host-key.pem"))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(folder / "host.pem"), append=True)
    return folder


@contextlib.asynccontextmanager
async def worker_host(
    host: netns.Host, endpoint: str, certs: Path
) -> AsyncIterator[list[dict[str, Any]]]:
    argv = host.command(
        sys.executable, "-m", "tests.discovery_etcd._scripts.host", host.address, "2",
        endpoint, str(TTL), str(certs),
    )  # fmt: skip
    async with netns.spawn(argv) as process:
        yield (await process.line())["workers"]


def ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply.get("ok"), reply
    return reply


def pids(reply: dict[str, Any]) -> set[int]:
    return {r["value"] for r in ok(reply)["results"]}


async def test_a_caller_dispatches_to_workers_of_three_hosts_and_drops_a_cut_off_one(
    hosts: netns.Network, certs: Path, tmp_path: Path
):
    caller = hosts.hosts["caller"]
    server = EtcdServer(tmp_path / "etcd", host=caller.address, wrap=caller.command())
    with running(server):
        async with contextlib.AsyncExitStack() as stack:
            on = {
                name: await stack.enter_async_context(
                    worker_host(hosts.hosts[name], server.endpoint, certs)
                )
                for name in HOSTS
            }
            argv = caller.command(
                sys.executable, "-m", "tests.support.lan_caller", "--discovery", "etcd",
                "--ca", str(certs / "ca.pem"), "--cert", str(certs / "host.pem"),
                "--key", str(certs / "host-key.pem"),
            )  # fmt: skip
            durable = await stack.enter_async_context(
                netns.spawn(argv, env={"WOOL_ETCD_ENDPOINTS": server.endpoint})
            )
            assert (await durable.line())["ready"]
            every = [w for name in HOSTS for w in on[name]]
            ok(await durable.request("wait", uids=[w["uid"] for w in every], timeout=30))
            reached = pids(await durable.request("call", routine="pid", args=[], times=12))
            assert reached == {w["pid"] for w in every}
            hosts.unplug("gamma")
            gone = [w["uid"] for w in on["gamma"]]
            # gamma's keep-alives stop reaching etcd: its lease expires within the TTL
            ok(await durable.request("wait_gone", uids=gone, timeout=TTL + 1))
            later = pids(await durable.request("call", routine="pid", args=[], times=8))
            assert later == {w["pid"] for name in ("alpha", "beta") for w in on[name]}
            hosts.plug("gamma")  # so that gamma's pool can leave cleanly
