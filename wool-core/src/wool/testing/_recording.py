"""Observing task events in tests."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from types import TracebackType

from wool._event_bus import drain
from wool._events import TaskEvent, TaskEventType


def drain_events(timeout: float = 10.0) -> bool:
    """Wait until this process has delivered every task event queued so far.

    Events reach handlers on wool's event thread, after the code that emitted them has
    moved on; call this before looking at what a handler recorded. Returns ``False`` if
    a handler is still busy after ``timeout`` seconds.
    """
    return drain(timeout)


class EventRecorder:
    """Records the task events of this process (of some types, or all).

    ::

        with EventRecorder("task-created", "task-completed") as recorder:
            await my_routine()
        assert [e.type for e in recorder.events] == ["task-created", "task-completed"]

    Leaving the block delivers the events still queued, then unregisters the recorder.
    ``contexts`` holds the ``context`` each event came with, in the same order.
    """

    def __init__(self, *types: TaskEventType) -> None:
        self.types = types
        self.events: list[TaskEvent] = []
        self.timestamps: list[int] = []
        self.contexts: list[contextvars.Context | None] = []
        self._changed = threading.Condition()
        self._handler = self._record  # one bound method, to register and unregister
        self._registered = False

    def _record(
        self, event: TaskEvent, timestamp: int, context: contextvars.Context | None = None
    ) -> None:
        with self._changed:
            self.events.append(event)
            self.timestamps.append(timestamp)
            self.contexts.append(context)
            self._changed.notify_all()

    def start(self) -> EventRecorder:
        """Begin recording (what entering the ``with`` block does)."""
        if not self._registered:
            TaskEvent.handler(*self.types)(self._handler)
            self._registered = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver the events queued so far, then stop recording."""
        if self._registered:
            drain(timeout)
            TaskEvent.remove_handler(self._handler)
            self._registered = False

    def __enter__(self) -> EventRecorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def of(self, *types: str, task_id: str | None = None) -> list[TaskEvent]:
        """The recorded events of these types (all with none), optionally of one task."""
        with self._changed:
            return [
                e
                for e in self.events
                if (not types or e.type in types) and (task_id is None or e.task_id == task_id)
            ]

    def wait_until(
        self, predicate: Callable[[list[TaskEvent]], bool], timeout: float = 10.0
    ) -> bool:
        """Block until ``predicate(events)`` holds; ``False`` after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.events)), timeout)

    async def until(
        self,
        predicate: Callable[[list[TaskEvent]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 (public kit: TimeoutError lists the events)
    ) -> None:
        """Wait, without blocking the event loop, until ``predicate(events)`` holds.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        if not await asyncio.to_thread(self.wait_until, predicate, timeout):
            raise TimeoutError(
                f"the recorded events never satisfied the condition within {timeout:g}s: "
                f"{[e.type for e in self.events]}"
            )
