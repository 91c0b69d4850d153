"""The set of workers a proxy routes to: discovery order, eviction, and load."""

from __future__ import annotations

import asyncio

import pytest

import wool
from wool._caller_candidates import CandidateSet
from wool.testing import worker_metadata


def meta(uid: str, port: int = 50000, **kwargs) -> wool.WorkerMetadata:
    return worker_metadata(uid, address=f"127.0.0.1:{port}", **kwargs)


@pytest.fixture
async def workers():
    worker_set = CandidateSet()
    yield worker_set
    await asyncio.gather(*(c.close() for c in worker_set.clear()))


async def test_candidates_follow_discovery_order(workers: CandidateSet):
    for i, uid in enumerate(["b", "a", "c"]):
        workers.upsert(meta(uid, 50000 + i), None)
    assert [c.uid for c in workers.candidates()] == ["b", "a", "c"]
    assert [m.uid for m in workers.workers] == ["b", "a", "c"]


async def test_an_evicted_worker_is_no_candidate_until_discovery_announces_it_again(
    workers: CandidateSet,
):
    a, b = meta("a", 1), meta("b", 2)
    workers.upsert(a, None)
    workers.upsert(b, None)
    workers.evict(a)
    assert [c.uid for c in workers.candidates()] == ["b"]
    assert workers.connection("a") is None
    workers.upsert(a, None)
    assert {c.uid for c in workers.candidates()} == {"a", "b"}


async def test_an_update_at_the_same_address_keeps_the_connection(workers: CandidateSet):
    workers.upsert(meta("a", 1), None)
    connection = workers.connection("a")
    assert workers.upsert(meta("a", 1, tags=["gpu"]), None) is None
    assert workers.connection("a") is connection
    assert workers.candidates()[0].metadata.tags == {"gpu"}


async def test_a_new_address_replaces_the_connection_and_hands_back_the_old(
    workers: CandidateSet,
):
    workers.upsert(meta("a", 1), None)
    old = workers.connection("a")
    stale = workers.upsert(meta("a", 2), None)
    assert stale is old and workers.connection("a") is not old
    assert old is not None
    await old.close()


async def test_removing_a_worker_hands_back_its_connection(workers: CandidateSet):
    workers.upsert(meta("a", 1), None)
    connection = workers.remove("a")
    assert connection is not None and workers.candidates() == []
    assert workers.remove("a") is None
    await connection.close()


async def test_in_flight_counts_per_worker_and_each_finish_counts_once(workers: CandidateSet):
    workers.upsert(meta("a", 1), None)
    workers.upsert(meta("b", 2), None)
    finishes = [workers.started("a") for _ in range(3)]
    workers.started("b")
    assert {c.uid: c.in_flight for c in workers.candidates()} == {"a": 3, "b": 1}
    finishes[0]()
    finishes[0]()  # twice: still one call
    assert workers.in_flight("a") == 2
    for finish in finishes[1:]:
        finish()
    assert {c.uid: c.in_flight for c in workers.candidates()} == {"a": 0, "b": 1}


async def test_waiters_wake_when_a_worker_arrives(workers: CandidateSet):
    checked = asyncio.Event()

    def has_workers() -> bool:
        checked.set()
        return bool(workers.workers)

    waiter = asyncio.ensure_future(workers.wait(has_workers))
    await checked.wait()  # it looked once, and found none
    assert not waiter.done()
    workers.upsert(meta("a", 1), None)
    async with asyncio.timeout(5):
        await waiter
