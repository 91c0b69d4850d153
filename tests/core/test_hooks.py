"""wool's pluggy hooks beyond task events: task admission and the worker lifecycle.

In-process checks use real workers served in this process (``wool.testing``); the
cross-process ones use the fixture plugin, installed as a ``wool.plugins`` entry point and
so loaded by every worker process: it records the worker hooks in the file named by
``WOOL_FIXTURE_EVENTS_FILE`` and refuses tasks on the workers listed in the file named by
``WOOL_FIXTURE_REFUSE_FILE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wool
import wool.plugins
from tests.core import routines as r
from tests.core.test_events import read_lines, recording_to_file, timeline, worker_pids
from wool.testing import InProcessPool


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every wool process started in the test records its events into this file."""
    yield from recording_to_file(tmp_path, monkeypatch)


# -- admission, in this process ------------------------------------------------------


class Verdict:
    """An admission plugin with a fixed answer, recording what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[wool.TaskEvent, wool.WorkerMetadata]] = []

    @wool.hookimpl(tryfirst=True)
    def wool_admit_task(self, event: wool.TaskEvent, worker: wool.WorkerMetadata) -> Any:
        self.asked.append((event, worker))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@contextlib.contextmanager
def registered(*plugins: object):
    for plugin in plugins:
        wool.plugins.register(plugin)
    try:
        yield
    finally:
        for plugin in plugins:
            wool.plugins.unregister(plugin)


async def dispatch_to(
    pool: InProcessPool, worker: wool.WorkerMetadata, *args: int
) -> tuple[str, int]:
    """Send ``add(*args)`` to ``worker`` of ``pool`` only; its task id and result."""
    proxy = pool.proxy
    task = wool.Task(routine="add", callable=r.add, args=args, kwargs={}, proxy=proxy)
    connection = wool.CallerConnection(worker)
    try:
        call = await connection.dispatch(task)
        return task.id, await call.result()
    finally:
        await connection.close()


@pytest.mark.parametrize("answer", [None, True])
async def test_abstaining_or_admitting_runs_the_task(answer: object):
    verdict = Verdict(answer)
    async with InProcessPool(1) as pool:
        (worker,) = pool.workers
        with registered(verdict):
            task_id, result = await dispatch_to(pool, worker, 2, 3)
    assert result == 5
    ((event, asked_worker),) = verdict.asked
    assert asked_worker == worker
    assert (event.type, event.routine, event.task_id, event.worker) == (
        "task-started",
        "add",
        task_id,
        worker.uid,
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(False, "refused by a wool_admit_task plugin"), ("too busy right now", "too busy right now")],
)
async def test_refusing_is_a_transient_dispatch_error_with_the_reason(answer: object, reason: str):
    async with InProcessPool(1) as pool:
        (worker,) = pool.workers
        with registered(Verdict(answer)):
            with pytest.raises(wool.TransientDispatchError, match=reason) as info:
                await dispatch_to(pool, worker, 1, 1)
            assert info.value.worker == worker.uid
            with pytest.raises(wool.NoWorkersAvailable, match=reason):
                await r.add(1, 1)
        assert await r.add(1, 1) == 2, "the worker takes tasks again once the plugin is gone"


async def test_the_first_answer_wins():
    first, second = Verdict(True), Verdict("never asked")
    async with InProcessPool(1) as pool:
        (worker,) = pool.workers
        with registered(second, first):  # tryfirst plugins: the last registered runs first
            assert (await dispatch_to(pool, worker, 1, 2))[1] == 3
    assert len(first.asked) == 1
    assert second.asked == []


async def test_an_admission_hook_that_raises_admits_and_is_logged(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.ERROR, logger="wool")
    async with InProcessPool(1) as pool:
        (worker,) = pool.workers
        with registered(Verdict(RuntimeError("admission bug"))):
            assert (await dispatch_to(pool, worker, 4, 4))[1] == 8
    assert any(
        "wool_admit_task" in rec.getMessage() and rec.exc_info is not None for rec in caplog.records
    ), [rec.getMessage() for rec in caplog.records]


async def test_a_refusing_worker_is_skipped_not_evicted():
    async with InProcessPool(2) as pool:
        refusing, other = pool.workers
        with registered(RefuseOn(refusing.uid)):
            results = [await r.add(i, 1) for i in range(6)]
        assert {m.uid for m in pool.proxy.workers} == {refusing.uid, other.uid}
    assert results == [1, 2, 3, 4, 5, 6]


class RefuseOn:
    def __init__(self, uid: str) -> None:
        self.uid = uid

    @wool.hookimpl
    def wool_admit_task(self, event: wool.TaskEvent, worker: wool.WorkerMetadata) -> str | None:
        return "not here" if worker.uid == self.uid else None


# -- admission, across worker processes ----------------------------------------------


@pytest.fixture
def refuse_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Workers started in the test refuse tasks while this file names them."""
    path = tmp_path / "refuse"
    monkeypatch.setenv("WOOL_FIXTURE_REFUSE_FILE", str(path))
    return path


async def test_a_worker_refusing_tasks_sends_them_to_another(events_file: Path, refuse_file: Path):
    async with wool.WorkerPool(size=2) as pool:
        assert pool.proxy is not None
        (refuser, refuser_pid), (other, other_pid) = worker_pids(pool).items()
        await asyncio.to_thread(refuse_file.write_text, f"{refuser_pid}\n")
        refused = [await r.pid() for _ in range(6)]
        assert {m.uid for m in pool.proxy.workers} == {refuser, other}, "no worker is evicted"
        await asyncio.to_thread(refuse_file.write_text, "")
        later = [await r.pid() for _ in range(6)]
    events = timeline(events_file)

    assert refused == [other_pid] * 6
    assert set(later) == {refuser_pid, other_pid}
    started = [e.pid for e in events.of(routine="pid") if e.type == "task-started"]
    assert started.count(refuser_pid) == later.count(refuser_pid)
    # One task, one task-created and one task-scheduled, however many workers refused it.
    assert events.types(pid=os.getpid(), routine="pid").count("task-created") == 12
    assert events.types(pid=os.getpid(), routine="pid").count("task-scheduled") == 12


async def test_refusal_by_every_worker_gives_no_workers_available(refuse_file: Path):
    async with wool.WorkerPool(size=2) as pool:
        assert pool.proxy is not None
        uids = set(worker_pids(pool))
        await asyncio.to_thread(refuse_file.write_text, "*")
        with pytest.raises(wool.NoWorkersAvailable, match="wool-fixture-plugin refuses add"):
            await r.add(1, 2)
        assert {m.uid for m in pool.proxy.workers} == uids
        await asyncio.to_thread(refuse_file.unlink)
        assert [await r.add(i, 0) for i in range(4)] == [0, 1, 2, 3]


# -- worker lifecycle ----------------------------------------------------------------


async def test_worker_lifecycle_hooks_fire_in_each_worker(events_file: Path):
    async with wool.WorkerPool(size=2) as pool:
        pids = worker_pids(pool)
        assert sorted([await r.add(i, 0) for i in range(4)]) == [0, 1, 2, 3]
    lines = read_lines(events_file)

    started = [(line.pid, line.name) for line in lines if line.type == "worker-started"]
    stopping = [(line.pid, line.name) for line in lines if line.type == "worker-stopping"]
    expected = sorted((pid, uid) for uid, pid in pids.items())
    assert sorted(started) == expected
    assert sorted(stopping) == expected
    for pid in pids.values():  # started before it was published, so before any task
        own = [line.type for line in lines if line.pid == pid]
        assert own[0] == "worker-started", own
        assert "task-started" in own, own
