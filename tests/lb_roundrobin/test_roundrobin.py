"""RoundRobinLoadBalancer against real workers, real faults and rogue gRPC servers."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import wool
from tests.core import routines as r
from wool.testing import worker_metadata
from wool_lb_roundrobin import RoundRobinLoadBalancer


async def test_tasks_cycle_through_the_workers():
    async with wool.WorkerPool(size=3, loadbalancer=RoundRobinLoadBalancer()):
        pids = [await r.pid() for _ in range(6)]
    assert len(set(pids[:3])) == 3
    assert pids[3:] == pids[:3]


async def test_a_worker_killed_while_idle_is_routed_around():
    async with wool.WorkerPool(size=2) as pool:
        victim = pool.workers[0]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        pids = [await r.pid() for _ in range(10)]
    assert victim.process.pid not in pids
    assert len(pids) == 10


async def test_a_worker_killed_mid_task_fails_the_caller_not_hangs():
    async with wool.WorkerPool(size=2):
        stream = r.pid_then_stall()
        victim = await anext(stream)
        step = asyncio.ensure_future(anext(stream))
        os.kill(victim, signal.SIGKILL)
        async with asyncio.timeout(10):
            with pytest.raises(wool.WorkerLost, match="lost worker"):
                await step
        assert {await r.pid() for _ in range(4)} - {victim}


async def test_no_workers_available_once_all_are_dead():
    async with wool.WorkerPool(size=2, wait_for_workers=1.0, restart=False) as pool:
        for worker in pool.workers:
            assert worker.process is not None
            worker.process.send_signal(signal.SIGKILL)
            await worker.process.wait()
        async with asyncio.timeout(15):
            with pytest.raises(wool.NoWorkersAvailable):
                await r.add(1, 2)


def test_a_copy_starts_again_at_the_first_worker():
    import pickle

    balancer = RoundRobinLoadBalancer()
    candidates = [wool.Candidate(worker_metadata(f"w{i}")) for i in range(3)]
    task = wool.Task(routine="add", callable=r.add, args=(1, 1), kwargs={}, proxy=None)  # type: ignore[arg-type]
    firsts = [balancer.order(task, candidates)[0].uid for _ in range(4)]
    copy = pickle.loads(pickle.dumps(balancer))
    assert firsts == ["w0", "w1", "w2", "w0"]
    assert copy.order(task, candidates)[0].uid == "w0"
    assert balancer.order(task, candidates)[0].uid == "w1", "the original keeps its turn"


def test_each_task_tries_every_worker_once_starting_at_its_turn():
    balancer = RoundRobinLoadBalancer()
    candidates = [wool.Candidate(worker_metadata(f"w{i}")) for i in range(3)]
    task = wool.Task(routine="add", callable=r.add, args=(1, 1), kwargs={}, proxy=None)  # type: ignore[arg-type]
    orders = [[c.uid for c in balancer.order(task, candidates)] for _ in range(3)]
    assert orders == [["w0", "w1", "w2"], ["w1", "w2", "w0"], ["w2", "w0", "w1"]]
    assert balancer.order(task, candidates[:2])[0].uid in {"w0", "w1"}
    assert balancer.order(task, []) == []
