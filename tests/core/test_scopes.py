"""The scope hooks: headers travel from wool_call_scope to wool_run_scope, the run scope's
context is the routine's, scopes hear the task's moments, and a failing plugin never
breaks a call."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
from collections.abc import Iterator, Mapping

import pytest

import wool
import wool.testing
from wool import _settings

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


@wool.routine
async def read_seen() -> str:
    return seen.get()


@wool.routine
async def two_items():
    yield 1
    yield 2


class Recorder:
    """A scope that records what it hears."""

    def __init__(self, log: list[tuple]) -> None:
        self.log = log

    def event(self, event: wool.TaskEvent, worker: wool.WorkerMetadata | None) -> None:
        self.log.append((event.type, event.step, worker.uid if worker else None))

    def end(self, exception: BaseException | None) -> None:
        self.log.append(("end", type(exception).__name__ if exception else None))


class Tracing:
    """Carries a header from the caller to the worker and sets it in the run's context."""

    def __init__(self) -> None:
        self.caller: list[tuple] = []
        self.worker: list[tuple] = []

    @wool.hookimpl
    def wool_call_scope(self, event: wool.TaskEvent, headers: dict[str, str]) -> Recorder:
        headers["x-test"] = f"from {event.task_id}"
        return Recorder(self.caller)

    @wool.hookimpl
    def wool_run_scope(
        self, event: wool.TaskEvent, headers: Mapping[str, str], worker: wool.WorkerMetadata
    ) -> Recorder:
        seen.set(headers.get("x-test", "no header"))
        self.worker.append(("start", event.task_id, worker.uid))
        return Recorder(self.worker)


@pytest.fixture
def registered() -> Iterator[list[object]]:
    plugins: list[object] = []
    yield plugins
    for plugin in plugins:
        wool.plugins.unregister(plugin)


async def test_headers_travel_and_the_run_scope_sets_the_routines_context(registered):
    tracing = Tracing()
    wool.plugins.register(tracing)
    registered.append(tracing)
    async with wool.testing.InProcessPool(1) as pool:
        value = await read_seen()
        (uid,) = [w.uid for w in pool.workers]
    task_id = tracing.worker[0][1]
    assert value == f"from {task_id}"
    assert tracing.worker == [("start", task_id, uid), ("end", None)]
    assert tracing.caller == [("task-scheduled", None, uid), ("end", None)]


async def test_scopes_hear_each_generator_step(registered):
    tracing = Tracing()
    wool.plugins.register(tracing)
    registered.append(tracing)
    async with wool.testing.InProcessPool(1) as pool:
        assert [i async for i in two_items()] == [1, 2]
        uid = pool.workers[0].uid
    steps = [("task-iteration-initiated", n, uid) for n in (1, 2, 3)]
    completed = [("task-iteration-completed", n, uid) for n in (1, 2, 3)]
    expected = [("task-scheduled", None, uid)]
    for pair in zip(steps, completed, strict=True):
        expected.extend(pair)
    assert tracing.caller == [*expected, ("end", None)]
    assert tracing.worker[1:] == [
        *(("task-iteration-started", n, uid) for n in (1, 2, 3)),
        ("end", None),
    ]


class Broken:
    @wool.hookimpl
    def wool_call_scope(self, headers: dict[str, str]) -> None:
        headers["x-count"] = 3  # type: ignore[assignment]  # not a string: dropped
        raise RuntimeError("call scope broke")

    @wool.hookimpl
    def wool_run_scope(self) -> BrokenScope:
        return BrokenScope()


class BrokenScope:
    def event(self, event: wool.TaskEvent, worker: wool.WorkerMetadata | None) -> None:
        raise RuntimeError("event broke")

    def end(self, exception: BaseException | None) -> None:
        raise RuntimeError("end broke")


async def test_a_failing_scope_plugin_is_logged_and_the_call_goes_on(registered, caplog):
    caplog.set_level(logging.WARNING, logger="wool.plugins")
    broken = Broken()
    wool.plugins.register(broken)
    registered.append(broken)
    async with wool.testing.InProcessPool(1):
        assert await read_seen() == ""
        assert [i async for i in two_items()] == [1, 2]
    messages = caplog.messages
    assert any("wool_call_scope" in m and "Broken" in m for m in messages), messages
    assert any("header 'x-count'" in m and "int" in m for m in messages), messages
    assert any("BrokenScope failed on task-iteration-started" in m for m in messages), messages
    assert any("BrokenScope failed ending read_seen()" in m for m in messages), messages


class Restarts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.event = asyncio.Event()

    @wool.hookimpl
    def wool_worker_restarted(
        self, dead: wool.WorkerMetadata, replacement: wool.WorkerMetadata
    ) -> None:
        self.seen.append((dead.uid, replacement.uid))
        self.event.set()


async def test_the_supervising_process_hears_of_each_restart(registered):
    restarts = Restarts()
    wool.plugins.register(restarts)
    registered.append(restarts)
    with _settings.override(restart_backoff=0.01, restart_backoff_max=0.05):
        async with wool.WorkerPool(size=1) as pool:
            (first,) = [w.metadata for w in pool.workers if w.metadata]
            os.kill(first.pid, signal.SIGKILL)
            await asyncio.wait_for(restarts.event.wait(), 60)
            (second,) = [w.metadata for w in pool.workers if w.metadata]
    assert restarts.seen == [(first.uid, second.uid)]
    assert second.uid != first.uid
