"""Task lifecycle events, delivered to pluggy hook implementations off the dispatch path."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from wool._hooks import hookimpl, plugin_manager

if TYPE_CHECKING:
    from wool._task import Task

TaskEventType = Literal[
    "task-created",
    "task-scheduled",
    "task-started",
    "task-stopped",
    "task-completed",
    "task-iteration-initiated",
    "task-iteration-started",
    "task-iteration-completed",
]
EVENT_TYPES: frozenset[str] = frozenset(TaskEventType.__args__)  # type: ignore[attr-defined]

log = logging.getLogger("wool.events")

Handler = Callable[..., Any]


@attrs.frozen
class TaskEvent:
    """A moment in a task's life, as seen by the caller or the worker that runs it."""

    type: TaskEventType
    task_id: str
    routine: str
    parent_id: str = ""
    tags: frozenset[str] = frozenset()
    worker: str = ""
    step: int | None = None
    kind: str | None = None
    exception: str | None = None

    @staticmethod
    def handler(*types: TaskEventType) -> Callable[[Handler], Handler]:
        """Register the decorated ``fn(event, timestamp, context=None)`` for these types.

        With no types the handler receives every event.
        """
        unknown = set(types) - EVENT_TYPES
        if unknown:
            raise ValueError(
                f"unknown task event type(s) {sorted(unknown)}; known: {sorted(EVENT_TYPES)}"
            )

        def register(fn: Handler) -> Handler:
            plugin_manager().register(_FilteredHandler(fn, frozenset(types)))
            _bus.refresh()
            return fn

        return register


class _FilteredHandler:
    def __init__(self, fn: Handler, types: frozenset[str]) -> None:
        self.fn = fn
        self.types = types
        self.__name__ = getattr(fn, "__qualname__", repr(fn))

    @hookimpl
    def wool_task_event(self, event: TaskEvent, timestamp: int, context: object | None) -> None:
        if not self.types or event.type in self.types:
            self.fn(event, timestamp, context)


class _EventBus:
    """Queues events and runs the hook implementations on one daemon thread, in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[TaskEvent, int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.active: bool | None = None

    def refresh(self) -> None:
        self.active = bool(plugin_manager().hook.wool_task_event.get_hookimpls())

    def emit(self, event: TaskEvent) -> None:
        if self.active is None:
            self.refresh()
        if not self.active:
            return
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wool-events", daemon=True)
                self._thread.start()
        self._queue.put((event, time.time_ns()))

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has been handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            event, timestamp = item
            arguments = {"event": event, "timestamp": timestamp, "context": None}
            for impl in plugin_manager().hook.wool_task_event.get_hookimpls():
                try:
                    impl.function(*(arguments[name] for name in impl.argnames))
                except Exception:
                    name = getattr(impl.plugin, "__name__", impl.plugin_name)
                    log.exception("task event handler %s failed on %s", name, event.type)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


_bus = _EventBus()
atexit.register(_bus.drain, 2.0)


def emit(type: TaskEventType, task: Task, **fields: Any) -> None:
    """Emit an event of ``type`` about ``task`` (cheap when nobody listens)."""
    if _bus.active is False:
        return
    _bus.emit(
        TaskEvent(
            type=type,
            task_id=task.id,
            routine=task.routine,
            parent_id=task.parent_id,
            tags=task.tags,
            **fields,
        )
    )


def drain(timeout: float = 5.0) -> bool:
    """Wait until this process has delivered every queued event; False on timeout."""
    return _bus.drain(timeout)
