"""Registering plain functions as task event handlers (``wool.plugins.task_event_handler``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from wool._events import EVENT_TYPES, Handler, TaskEventType
from wool._hooks import hookimpl, register, unregister


class _FilteredHandler:
    """A ``wool_task_event`` implementation that calls ``fn`` for some event types."""

    def __init__(self, fn: Handler, types: frozenset[str]) -> None:
        self.fn = fn
        self.types = types
        self.name = qualified_name(fn)

    def __repr__(self) -> str:
        return f"<task event handler {self.name}>"

    @hookimpl
    def wool_task_event(self, event: Any, timestamp: int, context: object | None) -> None:
        if not self.types or event.type in self.types:
            self.fn(event, timestamp, context)


_handlers: dict[object, list[_FilteredHandler]] = {}
"""Registrations made by task_event_handler, by function (by id if it is unhashable)."""
_handlers_lock = threading.Lock()


def task_event_handler(*types: TaskEventType) -> Callable[[Handler], Handler]:
    """Register the decorated ``fn(event, timestamp, context=None)`` for these event types.

    With no types the handler receives every event. It sees the events of the process
    it is registered in, on wool's event thread, and is called as
    ``fn(event, timestamp, context)``: ``timestamp`` is ``time.time_ns()`` at the event,
    ``context`` a copy of the emitting code's :class:`contextvars.Context` (see the
    ``wool_task_event`` hook specification). An exception it raises is logged with its
    name, never raised into the routine. Each registration is its own: functions that
    share a name (made by one factory) and one function registered again for other
    types all receive their events. Returns ``fn`` unchanged.
    """
    unknown = set(types) - EVENT_TYPES
    if unknown:
        raise ValueError(
            f"unknown task event type(s) {sorted(unknown)}; known: {sorted(EVENT_TYPES)}"
        )

    def add(fn: Handler) -> Handler:
        if not callable(fn):
            raise TypeError(f"a task event handler must be callable, got {fn!r}")
        plugin = _FilteredHandler(fn, frozenset(types))
        register(plugin, name=f"task-event-handler:{plugin.name}@{id(plugin):x}")
        with _handlers_lock:
            _handlers.setdefault(_key(fn), []).append(plugin)
        return fn

    return add


def remove_task_event_handler(fn: Handler) -> bool:
    """Unregister every registration of ``fn``; returns whether it was registered.

    Events already queued may still reach it.
    """
    with _handlers_lock:
        plugins = _handlers.pop(_key(fn), [])
    for plugin in plugins:
        unregister(plugin)
    return bool(plugins)


def _key(fn: Handler) -> object:
    try:
        hash(fn)
    except TypeError:
        return id(fn)  # the registration holds fn, so its id stays unique meanwhile
    return fn


def qualified_name(obj: object) -> str:
    """``module.qualname`` of a function or object, for log messages."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else name


def implementation_name(impl: Any) -> str:
    """How a log message names a hook implementation: the handler, or the plugin and function."""
    if isinstance(impl.plugin, _FilteredHandler):
        return impl.plugin.name
    return f"{qualified_name(impl.function)} (plugin {impl.plugin_name})"
