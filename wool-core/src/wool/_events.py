"""Task lifecycle events, delivered to pluggy hook implementations off the dispatch path."""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from wool._hooks import hookimpl, on_plugins_changed, plugin_manager

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

WORKER_EVENTS: frozenset[str] = frozenset(
    {"task-started", "task-iteration-started", "task-stopped"}
)
"""The event types a worker emits; the others are emitted by the caller."""

log = logging.getLogger("wool.events")

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

        With no types the handler receives every event. It sees the events of the process
        it is registered in, on wool's event thread, and is called as
        ``fn(event, timestamp, context)``: ``timestamp`` is ``time.time_ns()`` at the
        event, ``context`` a copy of the emitting code's :class:`contextvars.Context` (see
        the ``wool_task_event`` hook specification). An exception it raises is logged
        with its name, never raised into the routine. Returns ``fn`` unchanged;
        :meth:`remove_handler` unregisters it.
        """
        unknown = set(types) - EVENT_TYPES
        if unknown:
            raise ValueError(
                f"unknown task event type(s) {sorted(unknown)}; known: {sorted(EVENT_TYPES)}"
            )

        def register(fn: Handler) -> Handler:
            plugin = _FilteredHandler(fn, frozenset(types))
            plugin_manager().register(plugin)
            with _handlers_lock:
                _handlers.setdefault(_key(fn), []).append(plugin)
            return fn

        return register

    @staticmethod
    def remove_handler(fn: Handler) -> bool:
        """Unregister every registration of ``fn`` made with :meth:`handler`.

        Returns whether ``fn`` was registered. Events already queued may still reach it.
        """
        with _handlers_lock:
            plugins = _handlers.pop(_key(fn), [])
        manager = plugin_manager()
        for plugin in plugins:
            manager.unregister(plugin)
        return bool(plugins)


class _FilteredHandler:
    """A ``wool_task_event`` implementation that calls ``fn`` for some event types."""

    def __init__(self, fn: Handler, types: frozenset[str]) -> None:
        self.fn = fn
        self.types = types
        self.__name__ = _qualified_name(fn)

    def __repr__(self) -> str:
        return f"<task event handler {self.__name__}>"

    @hookimpl
    def wool_task_event(self, event: TaskEvent, timestamp: int, context: object | None) -> None:
        if not self.types or event.type in self.types:
            self.fn(event, timestamp, context)


_handlers: dict[object, list[_FilteredHandler]] = {}
"""Registrations made by TaskEvent.handler, by function (by id if it is unhashable)."""
_handlers_lock = threading.Lock()


def _key(fn: Handler) -> object:
    try:
        hash(fn)
    except TypeError:
        return id(fn)  # the registration holds fn, so its id stays unique meanwhile
    return fn


def _qualified_name(obj: object) -> str:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else name


def _implementation_name(impl: Any) -> str:
    """How a log message names a hook implementation: the handler, or the plugin and function."""
    if isinstance(impl.plugin, _FilteredHandler):
        return impl.plugin.__name__
    return f"{_qualified_name(impl.function)} (plugin {impl.plugin_name})"


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
                _implementation_name(impl),
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
