"""Task lifecycle events, in callers and in worker processes.

Caller-side events are observed with ``wool.TaskEvent.handler`` (through
``wool.testing.EventRecorder``); every process's events, workers included, through the
fixture plugin (``wool_fixture_plugin.hooks``), which appends them to the file named by
``WOOL_FIXTURE_EVENTS_FILE``. Workers deliver their queued events before they exit, so
the file is complete once the pool has exited and this process has drained its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import wool
from tests.core import routines as r
from wool.testing import EventRecorder, drain_events

TASK_EVENTS = frozenset(
    {
        "task-created",
        "task-scheduled",
        "task-started",
        "task-stopped",
        "task-completed",
        "task-iteration-initiated",
        "task-iteration-started",
        "task-iteration-completed",
    }
)
CALLER_EVENTS = frozenset(
    {
        "task-created",
        "task-scheduled",
        "task-completed",
        "task-iteration-initiated",
        "task-iteration-completed",
    }
)


@attrs.frozen
class Line:
    """One line of the fixture plugin's file."""

    pid: int
    type: str
    name: str  # the routine of a task event, the worker uid of a worker hook
    fields: dict[str, Any] = attrs.field(factory=dict, hash=False)

    def __getattr__(self, field: str) -> Any:
        try:
            return self.fields[field]
        except KeyError:
            raise AttributeError(field) from None

    @property
    def step_kind(self) -> tuple[str, int | None, str | None]:
        return (self.type, self.fields.get("step"), self.fields.get("kind"))


def read_lines(path: Path) -> list[Line]:
    """Every line the fixture plugin wrote, in file order."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        pid, kind, name, *rest = text.split(" ", 3)
        lines.append(Line(int(pid), kind, name, json.loads(rest[0]) if rest else {}))
    return lines


class Timeline:
    """The recorded task events, by process and by task."""

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.events = [line for line in lines if line.type in TASK_EVENTS]

    def of(self, *, pid: int | None = None, routine: str | None = None, task: str | None = None):
        return [
            e
            for e in self.events
            if (pid is None or e.pid == pid)
            and (routine is None or e.name == routine)
            and (task is None or e.task_id == task)
        ]

    def types(self, **where: Any) -> list[str]:
        return [e.type for e in self.of(**where)]

    def one(self, type: str, **where: Any) -> Line:
        found = [e for e in self.of(**where) if e.type == type]
        assert len(found) == 1, f"expected one {type} for {where}, found {found}"
        return found[0]

    def worker_of(self, task: str) -> int:
        """The pid of the process that ran ``task``."""
        return self.one("task-started", task=task).pid


def recording_to_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every wool process started in the test records its events into this file."""
    assert drain_events(), "events of an earlier test are still being delivered"
    path = tmp_path / "events.log"
    monkeypatch.setenv("WOOL_FIXTURE_EVENTS_FILE", str(path))
    yield path
    drain_events()


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every wool process started in the test records its events into this file."""
    yield from recording_to_file(tmp_path, monkeypatch)


def timeline(path: Path) -> Timeline:
    """What every process recorded; call it after the pool has exited."""
    assert drain_events(), "this process's events were not delivered in time"
    return Timeline(read_lines(path))


def worker_pids(pool: wool.WorkerPool) -> dict[str, int]:
    return {w.metadata.uid: w.metadata.pid for w in pool.workers if w.metadata is not None}


# -- the order of events -------------------------------------------------------------


async def test_a_coroutine(events_file: Path):
    async with wool.WorkerPool("events", size=1) as pool:
        pids = worker_pids(pool)
        assert await r.add(1, 2) == 3
    events = timeline(events_file)
    (uid, worker), me = next(iter(pids.items())), os.getpid()

    assert events.types(pid=me, routine="add") == [
        "task-created",
        "task-scheduled",
        "task-completed",
    ]
    assert events.types(pid=worker, routine="add") == ["task-started", "task-stopped"]
    created = events.one("task-created", pid=me)
    task = created.task_id
    assert {e.task_id for e in events.of(routine="add")} == {task}
    assert created.worker == "" and created.parent_id == ""
    for event in events.of(task=task):
        assert event.tags == ["events"]
        assert event.step is None and event.kind is None and event.exception is None
        if event.type != "task-created":
            assert event.worker == uid, event
    # Across the two processes: created < started < stopped < completed.
    stamps = [events.one(t, task=task).timestamp for t in ("task-created", "task-started")]
    stamps += [events.one(t, task=task).timestamp for t in ("task-stopped", "task-completed")]
    assert stamps == sorted(stamps)


async def test_an_async_generator_step_by_step(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        assert [i async for i in r.count_up(2)] == [0, 1]
    events = timeline(events_file)

    caller = events.of(pid=os.getpid(), routine="count_up")
    assert [e.step_kind for e in caller] == [
        ("task-created", None, None),
        ("task-scheduled", None, None),
        ("task-iteration-initiated", 1, "next"),
        ("task-iteration-completed", 1, "next"),
        ("task-iteration-initiated", 2, "next"),
        ("task-iteration-completed", 2, "next"),
        ("task-iteration-initiated", 3, "next"),  # the generator ends in this step
        ("task-iteration-completed", 3, "next"),
        ("task-completed", None, None),
    ]
    assert [e.exception for e in caller][-2:] == ["StopAsyncIteration", None]
    assert [e.step_kind for e in events.of(pid=worker, routine="count_up")] == [
        ("task-started", None, None),
        ("task-iteration-started", 1, "next"),
        ("task-iteration-started", 2, "next"),
        ("task-iteration-started", 3, "next"),
        ("task-stopped", None, None),
    ]
    assert events.one("task-stopped").exception is None


async def test_send_throw_and_close_steps(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        stream = r.accumulator("events-acc")
        assert await anext(stream) == 0
        assert await stream.asend(5) == 5
        assert await stream.athrow(ValueError("nope")) == "recovered from nope"
        await stream.aclose()
    events = timeline(events_file)

    steps = [(1, "next"), (2, "send"), (3, "throw"), (4, "close")]
    caller = events.of(pid=os.getpid(), routine="accumulator")
    expected = [("task-created", None, None), ("task-scheduled", None, None)]
    for step, kind in steps:
        expected += [
            ("task-iteration-initiated", step, kind),
            ("task-iteration-completed", step, kind),
        ]
    expected.append(("task-completed", None, None))
    assert [e.step_kind for e in caller] == expected
    assert all(e.exception is None for e in caller), "nothing failed"
    assert [e.step_kind for e in events.of(pid=worker, routine="accumulator")] == [
        ("task-started", None, None),
        *(("task-iteration-started", step, kind) for step, kind in steps),
        ("task-stopped", None, None),
    ]


async def test_a_failing_coroutine(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        with pytest.raises(ValueError, match="bad value"):
            await r.fail_with("value")
    events = timeline(events_file)

    caller = events.of(pid=os.getpid(), routine="fail_with")
    assert [(e.type, e.exception) for e in caller] == [
        ("task-created", None),
        ("task-scheduled", None),
        ("task-completed", "ValueError"),
    ]
    assert [(e.type, e.exception) for e in events.of(pid=worker, routine="fail_with")] == [
        ("task-started", None),
        ("task-stopped", "ValueError"),
    ]


async def test_a_failing_async_generator(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        seen = []
        with pytest.raises(ValueError, match="failed after 1"):
            async for value in r.stream_then_fail(1):
                seen.append(value)
        assert seen == [0]
    events = timeline(events_file)

    caller = events.of(pid=os.getpid(), routine="stream_then_fail")
    assert [(*e.step_kind, e.exception) for e in caller] == [
        ("task-created", None, None, None),
        ("task-scheduled", None, None, None),
        ("task-iteration-initiated", 1, "next", None),
        ("task-iteration-completed", 1, "next", None),
        ("task-iteration-initiated", 2, "next", None),
        ("task-iteration-completed", 2, "next", "ValueError"),
        ("task-completed", None, None, "ValueError"),
    ]
    worker_side = events.of(pid=worker, routine="stream_then_fail")
    assert [(*e.step_kind, e.exception) for e in worker_side] == [
        ("task-started", None, None, None),
        ("task-iteration-started", 1, "next", None),
        ("task-iteration-started", 2, "next", None),
        ("task-stopped", None, None, "ValueError"),
    ]


async def test_a_cancelled_coroutine(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        call = asyncio.ensure_future(r.wait_forever("events-cancel", "events-cancel-started"))
        assert await r.finally_ran("events-cancel-started")  # it runs on the worker now
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await r.finally_ran("events-cancel")
    events = timeline(events_file)

    caller = events.of(pid=os.getpid(), routine="wait_forever")
    assert [(e.type, e.exception) for e in caller] == [
        ("task-created", None),
        ("task-scheduled", None),
        ("task-completed", "CancelledError"),
    ]
    assert [(e.type, e.exception) for e in events.of(pid=worker, routine="wait_forever")] == [
        ("task-started", None),
        ("task-stopped", "CancelledError"),
    ]


async def test_a_generator_cancelled_mid_step(events_file: Path):
    async with wool.WorkerPool(size=1) as pool:
        (worker,) = worker_pids(pool).values()
        stream = r.stalls_on_second_step("events-gen-cancel", "events-gen-step")
        assert await anext(stream) == 0
        step = asyncio.ensure_future(anext(stream))
        assert await r.finally_ran("events-gen-step")
        step.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step
        assert await r.finally_ran("events-gen-cancel")
    events = timeline(events_file)

    caller = events.of(pid=os.getpid(), routine="stalls_on_second_step")
    assert [(*e.step_kind, e.exception) for e in caller] == [
        ("task-created", None, None, None),
        ("task-scheduled", None, None, None),
        ("task-iteration-initiated", 1, "next", None),
        ("task-iteration-completed", 1, "next", None),
        ("task-iteration-initiated", 2, "next", None),
        ("task-iteration-completed", 2, "next", "CancelledError"),
        ("task-completed", None, None, "CancelledError"),
    ]
    worker_side = events.of(pid=worker, routine="stalls_on_second_step")
    assert [(e.type, e.exception) for e in worker_side] == [
        ("task-started", None),
        ("task-iteration-started", None),
        ("task-iteration-started", None),
        ("task-stopped", "CancelledError"),
    ]


async def test_a_nested_dispatch(events_file: Path):
    async with wool.WorkerPool(size=2) as pool:
        pids = set(worker_pids(pool).values())
        assert await r.fib(2) == 1
    events = timeline(events_file)
    me = os.getpid()

    assert events.types(pid=me, routine="fib") == [
        "task-created",
        "task-scheduled",
        "task-completed",
    ]
    parent = events.one("task-created", pid=me).task_id
    runner = events.worker_of(parent)
    assert runner in pids
    children = [e.task_id for e in events.of(pid=runner) if e.type == "task-created"]
    assert len(children) == 2
    for child in children:
        assert events.one("task-created", task=child).parent_id == parent
        for event in events.of(task=child):
            assert event.parent_id == parent
        assert events.worker_of(child) in pids
        worker_side = [e for e in events.of(task=child) if e.type not in CALLER_EVENTS]
        assert [e.type for e in worker_side] == ["task-started", "task-stopped"]
        assert {e.pid for e in worker_side} == {events.worker_of(child)}
    # In the process that ran the parent: the children's lives nest inside the parent's.
    on_runner = [(e.type, e.task_id) for e in events.of(pid=runner)]
    started, stopped = (
        on_runner.index(("task-started", parent)),
        on_runner.index(("task-stopped", parent)),
    )
    for child in children:
        mine = [on_runner.index((t, child)) for t in ("task-created", "task-scheduled")]
        mine.append(on_runner.index(("task-completed", child)))
        assert started < mine[0] < mine[1] < mine[2] < stopped, on_runner
    # Across processes: each child is created before it starts and stops before it completes.
    for child in children:
        order = ("task-created", "task-started", "task-stopped", "task-completed")
        stamps = [events.one(t, task=child).timestamp for t in order]
        assert stamps == sorted(stamps), child


async def test_a_task_no_worker_accepts_still_completes(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    refuse = tmp_path / "refuse"
    refuse.write_text("*")
    monkeypatch.setenv("WOOL_FIXTURE_REFUSE_FILE", str(refuse))
    async with wool.WorkerPool(size=1):
        with pytest.raises(wool.NoWorkersAvailable):
            await r.add(1, 2)
    events = timeline(events_file)

    assert [(e.type, e.exception) for e in events.of(routine="add")] == [
        ("task-created", None),
        ("task-completed", "NoWorkersAvailable"),
    ]


# -- handlers ------------------------------------------------------------------------


async def test_handlers_receive_the_contract_signature_and_a_task_s_fields():
    received: list[tuple[wool.TaskEvent, int, object]] = []

    @wool.TaskEvent.handler("task-created", "task-completed")
    def on_task(event: wool.TaskEvent, timestamp: int, context=None) -> None:
        received.append((event, timestamp, context))

    try:
        async with wool.WorkerPool("handlers", size=1):
            assert await r.add(2, 3) == 5
        assert drain_events()
    finally:
        assert wool.TaskEvent.remove_handler(on_task)
    mine = [(e, t, c) for e, t, c in received if e.routine == "add"]
    assert [e.type for e, _, _ in mine] == ["task-created", "task-completed"]
    created, completed = mine[0][0], mine[1][0]
    assert created.task_id == completed.task_id and created.task_id
    assert created.tags == frozenset({"handlers"})
    assert created.side == "caller" and completed.side == "caller"
    assert completed.worker and completed.exception is None
    assert mine[0][1] <= mine[1][1]
    assert all(isinstance(c, contextvars.Context) for _, _, c in mine)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


async def test_the_context_is_the_emitting_code_s():
    with EventRecorder("task-created", "task-scheduled", "task-completed") as recorder:
        async with wool.WorkerPool(size=1):
            token = request_id.set("request-42")
            try:
                assert await r.add(1, 1) == 2
            finally:
                request_id.reset(token)
            assert await r.add(2, 2) == 4
    values = [
        (e.type, c.run(request_id.get) if c is not None else None)
        for e, c in zip(recorder.events, recorder.contexts, strict=True)
        if e.routine == "add"
    ]
    assert values == [
        ("task-created", "request-42"),
        ("task-scheduled", "request-42"),
        ("task-completed", "request-42"),
        ("task-created", ""),
        ("task-scheduled", ""),
        ("task-completed", ""),
    ]


async def test_a_handler_that_raises_is_logged_by_name_and_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
):
    def explode(event: wool.TaskEvent, timestamp: int, context=None) -> None:
        raise RuntimeError(f"handler failure on {event.type}")

    caplog.set_level(logging.ERROR, logger="wool.events")
    wool.TaskEvent.handler()(explode)
    try:
        with EventRecorder() as recorder:  # registered after it: still sees every event
            async with wool.WorkerPool(size=1):
                assert await r.add(1, 2) == 3
                assert [i async for i in r.count_up(2)] == [0, 1]
                with pytest.raises(ValueError):
                    await r.fail_with("value")
    finally:
        wool.TaskEvent.remove_handler(explode)
    failures = [rec for rec in caplog.records if rec.name == "wool.events"]
    assert failures, "the handler's exception was not logged"
    for record in failures:
        assert f"{__name__}.{explode.__qualname__}" in record.getMessage()
        assert record.exc_info is not None and "handler failure" in str(record.exc_info[1])
    types = {rec.getMessage().split(" failed on ")[1].split()[0] for rec in failures}
    assert {"task-created", "task-completed", "task-iteration-initiated"} <= types
    assert [e.type for e in recorder.events if e.routine == "add"] == [
        "task-created",
        "task-scheduled",
        "task-completed",
    ]


async def test_a_blocked_handler_does_not_stall_dispatch():
    entered, release = threading.Event(), threading.Event()

    def blocked(event: wool.TaskEvent, timestamp: int, context=None) -> None:
        entered.set()
        release.wait(60)

    wool.TaskEvent.handler("task-created")(blocked)
    try:
        with EventRecorder("task-completed") as recorder:
            async with wool.WorkerPool(size=1):
                assert await r.add(0, 0) == 0
                assert await asyncio.to_thread(entered.wait, 10), "the handler never ran"
                # The handler is stuck on the event thread from here on; dispatch is not.
                results = [await r.add(i, i) for i in range(20)]
                items = [i async for i in r.count_up(3)]
                with pytest.raises(ValueError):
                    await r.fail_with("value")
                assert not release.is_set()
                assert not drain_events(0.05), "events should queue behind the handler"
            assert results == [2 * i for i in range(20)]
            assert items == [0, 1, 2]
            release.set()
            assert drain_events(), "queued events were not delivered after the release"
    finally:
        release.set()
        wool.TaskEvent.remove_handler(blocked)
    assert [e.routine for e in recorder.events].count("add") == 21


async def test_a_removed_handler_receives_nothing_more():
    seen: list[str] = []

    def handler(event: wool.TaskEvent, timestamp: int, context=None) -> None:
        seen.append(event.type)

    wool.TaskEvent.handler("task-created")(handler)
    async with wool.WorkerPool(size=1):
        assert await r.add(1, 1) == 2
        assert drain_events()
        assert seen == ["task-created"]
        assert wool.TaskEvent.remove_handler(handler)
        assert not wool.TaskEvent.remove_handler(handler)
        assert await r.add(1, 1) == 2
        assert drain_events()
    assert seen == ["task-created"]


async def test_a_bound_method_handler_can_be_removed():
    class Counter:
        def __init__(self) -> None:
            self.count = 0

        def on_event(self, event: wool.TaskEvent, timestamp: int, context=None) -> None:
            self.count += 1

    counter = Counter()
    wool.TaskEvent.handler("task-completed")(counter.on_event)
    try:
        async with wool.WorkerPool(size=1):
            assert await r.add(1, 1) == 2
            assert drain_events()
    finally:
        assert wool.TaskEvent.remove_handler(counter.on_event)  # an equal bound method
    assert counter.count == 1


def test_unknown_event_types_are_refused():
    with pytest.raises(ValueError, match="task-finished"):
        wool.TaskEvent.handler("task-finished")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type", "side"),
    [
        ("task-created", "caller"),
        ("task-scheduled", "caller"),
        ("task-started", "worker"),
        ("task-iteration-initiated", "caller"),
        ("task-iteration-started", "worker"),
        ("task-iteration-completed", "caller"),
        ("task-stopped", "worker"),
        ("task-completed", "caller"),
    ],
)
def test_each_event_type_has_a_side(type: str, side: str):
    assert wool.TaskEvent(type=type, task_id="t", routine="r").side == side  # type: ignore[arg-type]


async def test_entry_point_plugins_see_worker_events(events_file: Path):
    async with wool.WorkerPool(size=2) as pool:
        pids = set(worker_pids(pool).values())
        assert sorted([await r.add(i, 0) for i in range(4)]) == [0, 1, 2, 3]
    events = timeline(events_file)
    started = events.of(routine="add")
    assert {e.pid for e in started if e.type == "task-started"} == pids
    assert {e.pid for e in started if e.type in CALLER_EVENTS} == {os.getpid()}
