"""Durable and hybrid pools on several hosts, meeting through LanDiscovery.

Hosts are network namespaces on one bridge (see conftest): workers run on ``alpha`` and
``beta``, a durable pool on ``caller``. Every request to the caller is bounded by a
timeout, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.multihost.conftest import TTL, caller_host, ok, worker_host
from tests.support import netns


def values(reply: dict) -> list:
    return [r.get("value") for r in reply["results"]]


def errors(reply: dict) -> list:
    return [r.get("error") for r in reply["results"]]


async def test_dispatch_reaches_the_workers_of_both_hosts(
    hosts: netns.Network, record_property: pytest.RecordProperty
):
    alpha, beta, caller = (hosts.hosts[name] for name in ("alpha", "beta", "caller"))
    async with caller_host(caller) as durable:
        # The first dispatch waits (up to 30 s) for a worker; start one host meanwhile and
        # time how long after its start the dispatch succeeds.
        first = asyncio.ensure_future(durable.request("call", routine="pid", args=[]))
        started = time.time()
        async with worker_host(alpha) as on_alpha:
            reply = ok(await first)
            assert values(reply)[0] in on_alpha.pids
            # from launching the host's process (interpreter, two workers spawned,
            # published) to the end of the first task the caller ran there
            since_start = reply["at"] - started
            record_property("first_dispatch_after_host_start_s", round(since_start, 3))
            print(f"first dispatch: {since_start:.3f} s after the worker host was started")
            async with worker_host(beta) as on_beta:
                ok(await durable.request("wait", uids=on_alpha.uids + on_beta.uids, timeout=30))
                pids = values(ok(await durable.request("call", routine="pid", args=[], times=8)))
                nested = ok(await durable.request("call", routine="fib", args=[10]))
    assert set(pids) == on_alpha.pids | on_beta.pids
    assert values(nested) == [55]


async def test_tags_route_tasks_to_the_host_that_carries_them(hosts: netns.Network):
    alpha, beta, caller = (hosts.hosts[name] for name in ("alpha", "beta", "caller"))
    async with (
        worker_host(alpha, 2, "alpha") as on_alpha,
        worker_host(beta, 2, "beta") as on_beta,
        caller_host(caller, "alpha") as to_alpha,
        caller_host(caller, "beta") as to_beta,
    ):
        ok(await to_alpha.request("wait", uids=on_alpha.uids, timeout=30))
        ok(await to_beta.request("wait", uids=on_beta.uids, timeout=30))
        alpha_pids = values(ok(await to_alpha.request("call", routine="pid", args=[], times=6)))
        beta_pids = values(ok(await to_beta.request("call", routine="pid", args=[], times=6)))
        routable = ok(await to_alpha.request("workers"))["workers"]
    assert set(alpha_pids) == on_alpha.pids
    assert set(beta_pids) == on_beta.pids
    assert sorted(w["uid"] for w in routable) == sorted(on_alpha.uids)


async def test_killing_a_hosts_workers_fails_its_tasks_and_the_caller_carries_on(
    hosts: netns.Network,
):
    alpha, beta, caller = (hosts.hosts[name] for name in ("alpha", "beta", "caller"))
    async with (
        worker_host(alpha) as on_alpha,
        worker_host(beta) as on_beta,
        caller_host(caller) as durable,
    ):
        ok(await durable.request("wait", uids=on_alpha.uids + on_beta.uids, timeout=30))
        stalled = ok(await durable.request("stall", times=4))["pids"]
        assert set(stalled) == on_alpha.pids | on_beta.pids  # one stream on each worker
        for pid in on_alpha.pids:
            os.kill(pid, signal.SIGKILL)
        lost = ok(await durable.request("resume", timeout=30, pids=sorted(on_alpha.pids)))
        # alpha's pool withdraws its dead workers (their records live TTL seconds more)
        ok(await durable.request("wait_gone", uids=on_alpha.uids, timeout=30))
        after = ok(await durable.request("call", routine="pid", args=[], times=6, timeout=30))
    assert errors(lost) == ["WorkerLost", "WorkerLost"]
    assert all(r["seconds"] < 10 for r in lost["results"]), lost
    assert errors(after) == [None] * 6, after
    assert set(values(after)) <= on_beta.pids


async def test_cutting_a_host_off_fails_its_tasks_and_the_caller_carries_on(
    hosts: netns.Network, record_property: pytest.RecordProperty
):
    """Pull alpha's cable while tasks run there. Discovery drops alpha's workers once
    their records expire (TTL seconds); the tasks in flight there fail with WorkerLost
    when gRPC notices the dead connection; tasks dispatched meanwhile either run on beta
    or fail the same way; later tasks run on beta. Plugged back in, alpha rejoins. Measured
    times are recorded as test properties (``--junitxml``) and printed (``-s``)."""
    alpha, beta, caller = (hosts.hosts[name] for name in ("alpha", "beta", "caller"))
    async with (
        worker_host(alpha) as on_alpha,
        worker_host(beta) as on_beta,
        caller_host(caller) as durable,
    ):
        ok(await durable.request("wait", uids=on_alpha.uids + on_beta.uids, timeout=30))
        # In flight on every worker: a stream between two steps, and a coroutine waiting
        # for its result (round robin spreads each kind over the four workers).
        stalled = ok(await durable.request("stall", times=4))["pids"]
        assert set(stalled) == on_alpha.pids | on_beta.pids
        ok(await durable.request("spawn", routine="wait_forever", args=["k", "s"], times=4))
        hosts.unplug("alpha")
        cut = time.time()
        streams, waiting, gone, right_after = await asyncio.gather(
            durable.request("resume", timeout=60, pids=sorted(on_alpha.pids)),
            durable.request("collect", count=2, timeout=60),
            durable.request("wait_gone", uids=on_alpha.uids, timeout=60),
            durable.request("call", routine="pid", args=[], times=4, concurrent=True, timeout=60),
        )
        later = ok(await durable.request("call", routine="pid", args=[], times=6, timeout=30))
        # Plug the cable back in: alpha's workers answer the caller's queries again and
        # rejoin.
        hosts.plug("alpha")
        plugged = time.time()
        back = ok(await durable.request("wait", uids=on_alpha.uids, timeout=60))
        mixed = ok(await durable.request("call", routine="pid", args=[], times=8, timeout=30))
    report = {
        "streams_failed_after_s": [r["seconds"] for r in ok(streams)["results"]],
        "coroutines_failed_after_s": [r["seconds"] for r in ok(waiting)["results"]],
        "workers_dropped_after_s": round(ok(gone)["at"] - cut, 3),
        "calls_right_after_cut_s": [r["seconds"] for r in ok(right_after)["results"]],
        "later_calls_s": [r["seconds"] for r in later["results"]],
        "rejoined_after_s": round(back["at"] - plugged, 3),
    }
    for key, value in report.items():
        record_property(key, value)
    print("cut off:", report)
    assert errors(streams) == ["WorkerLost", "WorkerLost"], streams
    assert errors(waiting) == ["WorkerLost", "WorkerLost"], waiting
    assert gone["at"] - cut < TTL * 3, gone
    for result in right_after["results"]:
        assert result.get("value") in on_beta.pids or result.get("error") == "WorkerLost", result
    assert errors(later) == [None] * 6, later
    assert set(values(later)) <= on_beta.pids
    assert errors(mixed) == [None] * 8, mixed
    assert set(values(mixed)) == on_alpha.pids | on_beta.pids
