"""Delivery of task events to ``wool_task_event`` implementations, off the dispatch path.

The lifecycle modules (``_caller_lifecycle``, ``_worker_lifecycle``) call :func:`emit`;
one daemon thread per process builds the :class:`TaskEvent` records and calls the hook
implementations, in order.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from wool._events import TaskEvent, TaskEventType
from wool._handlers import implementation_name
from wool._hooks import on_plugins_changed, plugin_manager

if TYPE_CHECKING:
    from wool._task import Task

log = logging.getLogger("wool.events")

_Item = tuple[str, str, str, str, frozenset[str], dict[str, Any], int, contextvars.Context]


BATCH_SECONDS = 0.005
"""How long the event thread lets events gather before it delivers them."""


class _EventBus:
    """Queues events and runs the hook implementations on one daemon thread, in order.

    The emitting thread only snapshots the event's fields, the time and the context; the
    ``TaskEvent`` record is built on the event thread, off the dispatch path.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.active: bool | None = None
        """Whether any ``wool_task_event`` implementation is registered; None: unknown."""

    def refresh(self) -> bool:
        self.active = active = bool(plugin_manager().hook.wool_task_event.get_hookimpls())
        return active

    def invalidate(self) -> None:
        self.active = None

    def put(self, type: str, task: Task, fields: dict[str, Any]) -> None:
        if self.active is None and not self.refresh():
            return
        item = (
            type,
            task.id,
            task.routine,
            task.parent_id,
            task.tags,
            fields,
            time.time_ns(),
            contextvars.copy_context(),
        )
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wool-events", daemon=True)
                self._thread.start()
        self._queue.put(item)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has been handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Let events gather for a moment: waking once per batch instead of once per
            # event keeps this thread from contending for the GIL on every dispatch.
            time.sleep(BATCH_SECONDS)
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for item in batch:
                if item is None:
                    return
                self._handle(item)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _handle(self, item: _Item) -> None:
        type, task_id, routine, parent_id, tags, fields, timestamp, context = item
        try:
            event = TaskEvent(
                type=type,  # type: ignore[arg-type]
                task_id=task_id,
                routine=routine,
                parent_id=parent_id,
                tags=tags,
                **fields,
            )
            deliver(event, timestamp, context)
        except Exception:
            log.exception("could not deliver a %s event of %s()", type, routine)


def deliver(event: TaskEvent, timestamp: int, context: contextvars.Context | None) -> None:
    """Call every ``wool_task_event`` implementation now, logging (not raising) failures."""
    arguments = {"event": event, "timestamp": timestamp, "context": context}
    for impl in plugin_manager().hook.wool_task_event.get_hookimpls():
        try:
            impl.function(*(arguments[name] for name in impl.argnames))
        except Exception:
            log.exception(
                "task event handler %s failed on %s of %s() (task %s)",
                implementation_name(impl),
                event.type,
                event.routine,
                event.task_id,
            )


_bus = _EventBus()
on_plugins_changed(_bus.invalidate)
atexit.register(_bus.drain, 2.0)


def emit(type: TaskEventType, task: Task, **fields: Any) -> None:
    """Emit an event of ``type`` about ``task``: ``fields`` are the other ``TaskEvent`` fields.

    Costs one attribute check when no ``wool_task_event`` implementation is registered;
    otherwise it queues a snapshot for the event thread.
    """
    if _bus.active is False:
        return
    _bus.put(type, task, fields)


def drain(timeout: float = 5.0) -> bool:
    """Wait until this process has delivered every queued event; False on timeout."""
    return _bus.drain(timeout)
