"""`wool workers --watch` shows each worker's load: calls running and completed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import pytest

import wool
from tests.cli.helpers import Wool, namespace, running
from tests.observe import routines

pytestmark = pytest.mark.timeout(120)


async def _load(watch: Wool, uid: str, **wanted: int) -> dict[str, Any]:
    """The next load object of worker ``uid`` showing the ``wanted`` counts."""
    while True:
        event = json.loads(await watch.line())
        if event["type"] == "load" and event["uid"] == uid:
            if all(event[key] == value for key, value in wanted.items()):
                return event


async def test_watch_shows_calls_running_and_completed_live(tmp_path):
    ns = namespace()
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    async with running("worker", "--size", "1", "--namespace", ns) as command:
        [worker] = await command.ready()
        watch_args = ["workers", "--namespace", ns, "--watch", "--json", "--interval", "0.2"]
        async with running(*watch_args) as watch:
            idle = await _load(watch, worker.uid)
            assert idle == {
                "type": "load",
                "uid": worker.uid,
                "address": worker.address,
                "running": 0,
                "completed": 0,
            }
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace=ns)):
                assert await routines.worker_pid() == worker.pid
                await _load(watch, worker.uid, running=0, completed=1)
                held = asyncio.ensure_future(routines.hold(str(fifo)))
                await _load(watch, worker.uid, running=1, completed=1)
                await asyncio.to_thread(fifo.write_text, "go\n")
                assert await held == "go"
                await _load(watch, worker.uid, running=0, completed=2)
            watch.send_signal(signal.SIGINT)
            result = await watch.finish()
        command.send_signal(signal.SIGTERM)
        assert (await command.finish()).returncode == 0
    assert result.returncode == 0, result.stderr


async def test_watch_text_shows_a_load_line_per_change():
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns) as command:
        [worker] = await command.ready()
        async with running("workers", "--namespace", ns, "--watch", "--interval", "0.2") as watch:
            lines = [await watch.line(), await watch.line()]
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace=ns)):
                await routines.worker_pid()
            while not lines[-1].endswith("completed=1"):
                lines.append(await watch.line())
            watch.send_signal(signal.SIGINT)
            assert (await watch.finish()).returncode == 0
        command.send_signal(signal.SIGTERM)
        assert (await command.finish()).returncode == 0
    assert lines[0].startswith(f"worker-added {worker.uid} {worker.address}")
    assert lines[1] == f"load {worker.uid} {worker.address} running=0 completed=0"
    assert lines[-1] == f"load {worker.uid} {worker.address} running=0 completed=1"
    # A poll may catch the call while it runs; nothing else is printed.
    assert set(lines[2:-1]) <= {f"load {worker.uid} {worker.address} running=1 completed=0"}


async def test_interval_must_be_positive():
    async with running("workers", "--watch", "--interval", "0") as command:
        result = await command.finish()
    assert result.returncode == 2
    assert "--interval must be more than 0 seconds, got 0" in result.stderr
