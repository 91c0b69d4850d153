"""Both sides of a task's life in one process: an in-process pool's workers emit their
events here too, so the caller's and the worker's choreography can be checked together."""

from __future__ import annotations

import pytest

import wool
from tests.core import routines as r
from wool.testing import EventRecorder, InProcessPool, refusing

CALLER = ("task-created", "task-scheduled", "task-completed")
WORKER = ("task-started", "task-stopped")
STEPS = ("task-iteration-initiated", "task-iteration-started", "task-iteration-completed")


def sides(recorder: EventRecorder, task_id: str) -> tuple[list[str], list[str]]:
    events = recorder.of(task_id=task_id)
    return (
        [e.type for e in events if e.side == "caller"],
        [e.type for e in events if e.side == "worker"],
    )


async def test_a_coroutine_task_has_each_sides_events_once_and_in_order():
    with EventRecorder() as recorder:
        async with InProcessPool(1) as pool:
            assert await r.add(1, 2) == 3
    (created,) = recorder.of("task-created")
    caller, worker = sides(recorder, created.task_id)
    assert caller == list(CALLER)
    assert worker == list(WORKER)
    assert {e.worker for e in recorder.of(task_id=created.task_id)} - {""} == {pool.workers[0].uid}


async def test_a_task_refused_by_a_worker_has_no_events_there():
    with EventRecorder() as recorder:
        async with InProcessPool(2, loadbalancer="roundrobin") as pool:
            refuser, other = pool.workers
            with refusing(refuser.uid):
                assert [await r.add(i, 0) for i in range(4)] == [0, 1, 2, 3]
    workers = {e.worker for e in recorder.of(*WORKER)}
    assert workers == {other.uid}
    for created in recorder.of("task-created"):
        caller, worker = sides(recorder, created.task_id)
        assert caller == list(CALLER) and worker == list(WORKER)


async def test_a_generator_steps_are_numbered_alike_on_both_sides():
    with EventRecorder(*STEPS) as recorder:
        async with InProcessPool(1):
            stream = r.count_up(5)
            assert [await anext(stream), await anext(stream)] == [0, 1]
            await stream.aclose()
    steps = {t: [(e.step, e.kind) for e in recorder.of(t)] for t in STEPS}
    expected = [(1, "next"), (2, "next"), (3, "close")]
    assert steps == {t: expected for t in STEPS}
    assert [e.exception for e in recorder.of("task-iteration-completed")] == [None] * 3


async def test_a_failing_task_names_its_exception_on_both_sides():
    with EventRecorder("task-stopped", "task-completed") as recorder:
        async with InProcessPool(1):
            with pytest.raises(ValueError):
                await r.fail_with("value")
    assert [(e.type, e.exception) for e in recorder.events] == [
        ("task-stopped", "ValueError"),
        ("task-completed", "ValueError"),
    ]


async def test_a_task_no_worker_takes_completes_without_a_worker():
    with EventRecorder() as recorder:
        async with InProcessPool(1) as pool:
            with refusing(pool.workers[0].uid), pytest.raises(wool.NoWorkersAvailable):
                await r.add(1, 1)
    assert [(e.type, e.worker, e.exception) for e in recorder.events] == [
        ("task-created", "", None),
        ("task-completed", "", "NoWorkersAvailable"),
    ]
