"""Task scopes: what ``wool_call_scope`` and ``wool_run_scope`` plugins return, and the
calls the two lifecycles make into them.

Each function costs one check when no plugin implements the scope hooks, and logs, never
raises, what an implementation or a scope raises: a plugin cannot break a dispatch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

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

_Impl = tuple[Callable[..., Any], tuple[str, ...], Any]
_impls: dict[str, list[_Impl]] = {}
"""Hook name -> its implementations: function, argument names, the hookimpl (for logs).
Cleared whenever plugins change."""
on_plugins_changed(_impls.clear)


def _implementations(hook: str) -> list[_Impl]:
    impls = _impls.get(hook)
    if impls is None:
        found = getattr(plugin_manager().hook, hook).get_hookimpls()
        impls = _impls[hook] = [(i.function, tuple(i.argnames), i) for i in found]
    return impls


def _open(hook: str, impls: list[_Impl], arguments: dict[str, Any]) -> Scopes | None:
    scopes: Scopes = []
    for function, names, impl in impls:
        try:
            scope = function(*[arguments[name] for name in names])
        except Exception:
            name = implementation_name(impl)
            log.exception("%s %s failed; the task goes on without it", hook, name)
            continue
        if scope is not None:
            scopes.append(scope)
    return scopes or None


def _event(type: TaskEventType, task: Task, **fields: Any) -> TaskEvent:
    # positional: the quickest way through the attrs initialiser, on the dispatch path
    return TaskEvent(type, task.id, task.routine, task.parent_id, task.tags, **fields)


def open_call(task: Task) -> Scopes | None:
    """Ask the ``wool_call_scope`` plugins about a new call; they may add ``task.headers``."""
    impls = _implementations("wool_call_scope")
    if not impls:
        return None
    event = _event("task-created", task)
    scopes = _open("wool_call_scope", impls, {"event": event, "headers": task.headers})
    if task.headers:
        _check_headers(task)
    return scopes


def open_run(task: Task, worker: WorkerMetadata) -> Scopes | None:
    """Ask the ``wool_run_scope`` plugins about a task starting here (in its context)."""
    impls = _implementations("wool_run_scope")
    if not impls:
        return None
    event = _event("task-started", task, worker=worker.uid)
    arguments = {"event": event, "headers": task.headers, "worker": worker}
    return _open("wool_run_scope", impls, arguments)


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
    # Plugins fill these in; their types are checked here, not trusted.
    headers = cast("dict[object, object]", task.headers)
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
        del headers[key]


def _name(scope: object) -> str:
    return type(scope).__qualname__
