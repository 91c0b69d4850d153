"""Task scopes: what ``wool_call_scope`` and ``wool_run_scope`` plugins return, and the
calls the two lifecycles make into them.

Each function costs one check when no plugin implements the scope hooks, and logs, never
raises, what an implementation or a scope raises: a plugin cannot break a dispatch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from wool._events import TaskEvent, TaskEventType
from wool._handlers import implementation_name
from wool._hooks import on_plugins_changed, plugin_manager

if TYPE_CHECKING:
    from wool._metadata import WorkerMetadata
    from wool._task import Task

log = logging.getLogger("wool.plugins")


class TaskScope(Protocol):
    """Follows one task on one side; returned by ``wool_call_scope`` or ``wool_run_scope``.

    Its methods are called synchronously, on the dispatch path or the worker's event loop,
    so they must be quick; an exception is logged and does not reach the routine.
    """

    def event(self, event: TaskEvent, worker: WorkerMetadata | None) -> None:
        """A later moment of the task on this side; ``worker``: the metadata of the
        worker running it, when this side knows it (``None`` before ``task-scheduled``)."""
        ...

    def end(self, exception: BaseException | None) -> None:
        """The task is over on this side: ``exception`` is what ended it, or ``None``."""
        ...


Scopes = list[TaskScope]

_active: dict[str, bool] = {}
"""Hook name -> whether any implementation is registered (cleared when plugins change)."""
on_plugins_changed(_active.clear)


def _implemented(hook: str) -> bool:
    active = _active.get(hook)
    if active is None:
        active = _active[hook] = bool(getattr(plugin_manager().hook, hook).get_hookimpls())
    return active


def _open(hook: str, arguments: dict[str, Any]) -> Scopes | None:
    scopes: Scopes = []
    for impl in getattr(plugin_manager().hook, hook).get_hookimpls():
        try:
            scope = impl.function(*(arguments[name] for name in impl.argnames))
        except Exception:
            log.exception(
                "%s %s failed; the task goes on without it", hook, implementation_name(impl)
            )
            continue
        if scope is not None:
            scopes.append(scope)
    return scopes or None


def _event(type: TaskEventType, task: Task, **fields: Any) -> TaskEvent:
    return TaskEvent(
        type=type,
        task_id=task.id,
        routine=task.routine,
        parent_id=task.parent_id,
        tags=task.tags,
        **fields,
    )


def open_call(task: Task) -> Scopes | None:
    """Ask the ``wool_call_scope`` plugins about a new call; they may add ``task.headers``."""
    if not _implemented("wool_call_scope"):
        return None
    scopes = _open(
        "wool_call_scope", {"event": _event("task-created", task), "headers": task.headers}
    )
    _check_headers(task)
    return scopes


def open_run(task: Task, worker: WorkerMetadata) -> Scopes | None:
    """Ask the ``wool_run_scope`` plugins about a task starting here (in its context)."""
    if not _implemented("wool_run_scope"):
        return None
    event = _event("task-started", task, worker=worker.uid)
    return _open("wool_run_scope", {"event": event, "headers": task.headers, "worker": worker})


def notify(
    scopes: Scopes,
    type: TaskEventType,
    task: Task,
    metadata: WorkerMetadata | None,
    **fields: Any,
) -> None:
    """Tell every scope of a task about one of its moments."""
    event = _event(type, task, **fields)
    for scope in scopes:
        try:
            scope.event(event, metadata)
        except Exception:
            log.exception("task scope %s failed on %s of %s()", _name(scope), type, task.routine)


def end(scopes: Scopes, task: Task, exception: BaseException | None) -> None:
    """Tell every scope of a task that it is over on this side."""
    for scope in scopes:
        try:
            scope.end(exception)
        except Exception:
            log.exception("task scope %s failed ending %s()", _name(scope), task.routine)


def _check_headers(task: Task) -> None:
    headers: Mapping[Any, Any] = task.headers
    bad = [
        key
        for key, value in headers.items()
        if not (isinstance(key, str) and isinstance(value, str))
    ]
    for key in bad:
        log.warning(
            "a wool_call_scope plugin set header %r of %s() to a %s; headers are strings, it "
            "is not sent",
            key,
            task.routine,
            type(headers[key]).__qualname__,
        )
        del task.headers[key]


def _name(scope: object) -> str:
    return type(scope).__qualname__
