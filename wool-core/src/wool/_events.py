"""The task lifecycle event record and its types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

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

WORKER_EVENTS: frozenset[str] = frozenset(
    {"task-started", "task-iteration-started", "task-stopped"}
)
"""The event types a worker emits; the others are emitted by the caller."""

Handler = Callable[..., Any]


@attrs.frozen
class TaskEvent:
    """A moment in a task's life, as seen by the caller or by the worker that runs it.

    ``task_id`` identifies the task on both sides; ``parent_id`` is the id of the task
    whose routine dispatched this one ("" for a top-level call); ``routine`` is the
    routine's qualified name; ``tags`` are the tags of the pool it was dispatched in;
    ``worker`` is the uid of the worker running it (empty on ``task-created`` and when no
    worker took the task); ``step`` (1, 2, ...) and
    ``kind`` (``next``, ``send``, ``throw``, ``close``) describe one step of an async
    generator; ``exception`` is the qualified name of the exception type that ended the
    task, or the step, if one did. ``side`` says which process emits the event.
    """

    type: TaskEventType
    task_id: str
    routine: str
    parent_id: str = ""
    tags: frozenset[str] = frozenset()
    worker: str = ""
    step: int | None = None
    kind: str | None = None
    exception: str | None = None

    @property
    def side(self) -> Literal["caller", "worker"]:
        """Which process emits events of this type: the caller's or the worker's."""
        return "worker" if self.type in WORKER_EVENTS else "caller"

    @staticmethod
    def handler(*types: TaskEventType) -> Callable[[Handler], Handler]:
        """Register the decorated ``fn(event, timestamp, context=None)`` for these types.

        Sugar for :func:`wool.plugins.task_event_handler`: with no types the handler
        receives every event of the process it is registered in, on wool's event thread.
        Returns ``fn`` unchanged; :meth:`remove_handler` unregisters it.
        """
        from wool._handlers import task_event_handler

        return task_event_handler(*types)

    @staticmethod
    def remove_handler(fn: Handler) -> bool:
        """Unregister every registration of ``fn``; whether it was registered.

        Sugar for :func:`wool.plugins.remove_task_event_handler`.
        """
        from wool._handlers import remove_task_event_handler

        return remove_task_event_handler(fn)
