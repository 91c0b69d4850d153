"""CallerConnection against a worker that is gone: errors, never a hang."""

from __future__ import annotations

import asyncio
import socket

import pytest

import wool
import wool.testing
from tests.core import routines as r
from wool_lb_roundrobin import RoundRobinLoadBalancer


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_dispatch_to_a_dead_address_is_transient_every_time():
    metadata = wool.WorkerMetadata("gone", f"127.0.0.1:{_closed_port()}", 1, "0")
    proxy = wool.CallerProxy(wool.testing.StaticSubscriber([metadata]), RoundRobinLoadBalancer())
    connection = wool.CallerConnection(metadata)
    try:
        for _ in range(3):  # the first session fails, and so does every new one
            task = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)
            async with asyncio.timeout(10):
                with pytest.raises(wool.TransientDispatchError, match="gone at 127.0.0.1"):
                    await connection.dispatch(task)
    finally:
        await connection.close()
