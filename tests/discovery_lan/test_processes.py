"""Publishers and browsers in other processes of the loopback-only namespace."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from tests.discovery_lan.conftest import SCRIPTS, SHORT_TTL, metadata, publisher_process, python
from tests.support import netns
from tests.support.events import added, dropped, following
from wool_discovery_lan import LanDiscovery


async def test_workers_of_a_killed_publisher_are_dropped_when_their_ttl_runs_out(
    lan: netns.Namespace,
):
    """``early`` is published (by this process) before the other process publishes
    ``late`` with the same TTL, and stays: by the time ``late`` expires, ``early`` would
    have expired too had its records not been refreshed."""
    discovery = LanDiscovery(["lo"], ttl=SHORT_TTL)
    early = metadata("w-early")
    late = metadata("w-late", address="127.0.0.1:5001")
    loop = asyncio.get_running_loop()
    async with following(discovery.subscriber) as events, discovery.publisher as publisher:
        await publisher.publish(added(early))
        assert await events.next() == added(early)
        async with publisher_process(lan, [late], ttl=SHORT_TTL) as process:
            assert await events.next() == added(late)
            process.process.send_signal(signal.SIGKILL)  # no goodbye
            killed = loop.time()
            assert await process.process.wait() == -signal.SIGKILL
            assert await events.next(timeout=SHORT_TTL * 5) == dropped(late)
            assert loop.time() - killed < SHORT_TTL * 4  # by expiry, not some later timeout
        assert events.pending() == []  # early is still there


async def test_a_worker_whose_process_exits_is_withdrawn_at_once(lan: netns.Namespace):
    """The publisher watches the pid of each worker it publishes (on its own host)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.stdin.read()", stdin=asyncio.subprocess.PIPE
    )
    try:
        worker = metadata("w1", pid=process.pid)
        discovery = LanDiscovery(["lo"])  # records live 60 s: only a goodbye is this fast
        async with discovery.publisher as publisher, following(discovery.subscriber) as events:
            await publisher.publish(added(worker))
            assert await events.next() == added(worker)
            process.kill()
            assert await events.next(timeout=10) == dropped(worker)
            assert "0 workers" in repr(publisher)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_publisher_process_that_exits_says_goodbye(lan: netns.Namespace):
    worker = metadata("w1")
    async with following(LanDiscovery(["lo"]).subscriber) as events:
        async with publisher_process(lan, [worker], ttl=60):
            assert await events.next() == added(worker)
        # leaving closed its stdin: it left the publisher and exited, long before 60 s
        assert await events.next(timeout=10) == dropped(worker)


async def test_a_standard_mdns_browser_reads_the_records(lan: netns.Namespace):
    """A plain zeroconf ServiceBrowser in another process (no wool imported) resolves the
    service: SRV port and target, A record, and the TXT fields."""
    workers = [
        metadata("w1", address="127.0.0.1:4242", tags={"gpu", "fast"}, secure=True),
        metadata("w2", address="127.0.0.1:4343"),
    ]
    discovery = LanDiscovery(["lo"])
    async with discovery.publisher as publisher:
        for worker in workers:
            await publisher.publish(added(worker))
        argv = python(lan, str(SCRIPTS / "browse.py"), "127.0.0.1", "_wool._tcp.local.", "2", "20")
        browser = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        async with asyncio.timeout(60):
            out, _ = await browser.communicate()
    assert browser.returncode == 0, out
    services = json.loads(out)
    assert [s["name"] for s in services] == ["w1._wool._tcp.local.", "w2._wool._tcp.local."]
    first = services[0]
    assert first["server"] == "w1.local."
    assert first["port"] == 4242
    assert first["addresses"] == ["127.0.0.1"]
    properties = first["properties"]
    assert properties["txtvers"] == "1"
    assert properties["uid"] == "w1"
    assert properties["address"] == "127.0.0.1:4242"
    assert properties["pid"] == str(workers[0].pid)
    assert properties["version"] == workers[0].version
    assert properties["secure"] == "1"
    assert json.loads(properties["tags"]) == ["fast", "gpu"]
    assert services[1]["properties"]["secure"] == "0"
