"""The pluggy hook specifications of wool and the plugin manager of this process.

Every wool process (callers and workers alike) registers the plugins named in the
``wool.plugins`` entry-point group the first time it needs the plugin manager. A plugin
is any module or object with ``@wool.hookimpl`` functions named after the hooks below;
an implementation may accept any subset of a hook's arguments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from contextvars import Context

    from wool._events import TaskEvent
    from wool._metadata import WorkerMetadata
    from wool._scopes import TaskScope

PROJECT = "wool"
PLUGIN_GROUP = "wool.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

log = logging.getLogger("wool.plugins")


class WoolHookSpecs:
    """Hooks a wool plugin may implement with ``@wool.hookimpl``."""

    @hookspec
    def wool_task_event(self, event: TaskEvent, timestamp: int, context: Context | None) -> None:
        """Called for every task lifecycle event, in the process where the event happens.

        Caller processes see ``task-created``, ``task-scheduled``, ``task-completed``,
        ``task-iteration-initiated`` and ``task-iteration-completed``; worker processes see
        ``task-started``, ``task-iteration-started`` and ``task-stopped`` (``event.side``
        tells which). A worker that dispatches nested routines is also a caller.

        ``timestamp`` is ``time.time_ns()`` at the moment of the event. ``context`` is a
        copy of the :class:`contextvars.Context` of the code that emitted the event: read
        your own context variables with ``context.get(var)`` (a request id, a tracing
        span...). It is ``None`` only when an event is delivered by hand.

        Implementations run on this process's ``wool-events`` thread, in event order,
        never on the dispatch path: an exception is logged with the implementation's
        name and does not reach the routine, and a slow implementation delays only the
        delivery of later events. The return value is ignored.
        """

    @hookspec(firstresult=True)
    def wool_admit_task(self, event: TaskEvent, worker: WorkerMetadata) -> bool | str | None:
        """Called on a worker when a task arrives, before it starts; may refuse the task.

        ``event`` describes the task (its ``type`` is ``task-started``, the event that fires
        if the task is admitted); ``worker`` is this worker's metadata. Return ``None`` to
        abstain (the next plugin is asked; when all abstain the task runs), ``True`` to
        admit it at once (no further plugin is asked), or ``False`` or a reason string to
        refuse it. A refused task does not run here: the caller gets a
        ``TransientDispatchError`` carrying the reason, and its load balancer tries another
        worker without evicting this one. An implementation that raises is logged and
        counts as abstaining. Runs on the worker's event loop, so it must be quick.
        """

    @hookspec
    def wool_worker_started(self, worker: WorkerMetadata) -> None:
        """Called in a worker process once its server accepts calls, before it is published.

        ``worker`` is the metadata the worker publishes. Runs on the worker's event loop;
        an exception is logged. The return value is ignored.
        """

    @hookspec
    def wool_worker_stopping(self, worker: WorkerMetadata) -> None:
        """Called in a worker process when it begins to stop, before it refuses new tasks.

        Tasks still running get the pool's grace period after this call. Runs on the
        worker's event loop; an exception is logged. The return value is ignored.
        """

    @hookspec
    def wool_call_scope(self, event: TaskEvent, headers: dict[str, str]) -> TaskScope | None:
        """Called in a caller when a routine is called, before its task is encoded.

        Runs synchronously in the calling code's context (a tracer finds its current span
        there). ``event`` describes the call (type ``task-created``, no worker yet). Add
        to ``headers`` the strings that should travel to the worker with the task (W3C
        trace context, for instance): the worker hands them to ``wool_run_scope``.
        Return a :class:`wool.plugins.TaskScope` to follow this call (``scope.event`` for
        ``task-scheduled``, with the worker's metadata, and for each generator step's
        ``task-iteration-initiated`` and ``task-iteration-completed``; then ``scope.end``
        once, with what the call raised or ``None``), or ``None`` not to. It runs on the
        dispatch path, so it must be quick; an exception is logged and the call goes on
        without that implementation's scope.
        """

    @hookspec
    def wool_run_scope(
        self, event: TaskEvent, headers: Mapping[str, str], worker: WorkerMetadata
    ) -> TaskScope | None:
        """Called on a worker when an admitted task starts, before its routine runs.

        Runs synchronously in the task's own context: context variables set here (a
        current span) are seen by the routine, by every step of a generator and by the
        nested calls it makes. ``event`` is the ``task-started`` event; ``headers`` are
        what the caller's ``wool_call_scope`` implementations added; ``worker`` is this
        worker's metadata. Return a :class:`wool.plugins.TaskScope` to follow the run
        (``scope.event`` for each ``task-iteration-started``; ``scope.end`` once when the
        routine ended here, with the exception that ended it, or ``None``), or ``None``.
        Runs on the worker's event loop, so it must be quick; an exception is logged and
        the task runs without that implementation's scope.
        """

    @hookspec
    def wool_worker_restarted(self, dead: WorkerMetadata, replacement: WorkerMetadata) -> None:
        """Called where workers are supervised (a ``WorkerPool`` that spawns them, ``wool
        worker``) once a worker that exited unexpectedly has been replaced and published.

        ``dead`` is the metadata of the worker that exited, ``replacement`` that of the new
        one. Runs on that process's event loop; an exception is logged. The return value
        is ignored.
        """


class _PluginManager(pluggy.PluginManager):
    """A plugin manager that tells its listeners when plugins come and go."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.listeners: list[Callable[[], None]] = []

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self.notify_listeners()

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        try:
            return super().unregister(plugin, name)
        finally:
            self.notify_listeners()

    def notify_listeners(self) -> None:
        """Tell each listener that the registered plugins changed."""
        for listener in self.listeners:
            listener()


_manager: _PluginManager | None = None
_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def plugin_manager() -> pluggy.PluginManager:
    """This process's plugin manager, with the entry-point plugins registered."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                manager = _PluginManager(PROJECT)
                manager.add_hookspecs(WoolHookSpecs)
                _load_entry_point_plugins(manager)
                manager.listeners = _listeners
                _manager = manager
                manager.notify_listeners()
    return _manager


def register(plugin: object, name: str | None = None) -> str:
    """Register ``plugin`` (a module, class or object with ``@hookimpl`` functions) here.

    Returns the name it is registered under: ``name``, or one unique to this object (so
    two objects that share a ``__name__`` never collide). Registering one object twice
    raises ``ValueError``.
    """
    manager = plugin_manager()
    if manager.is_registered(plugin):
        raise ValueError(
            f"{plugin!r} is already registered as wool plugin {manager.get_name(plugin)!r}"
        )
    if name is None:
        label = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        name = f"{label}@{id(plugin):x}"
    elif manager.has_plugin(name):
        raise ValueError(f"a wool plugin named {name!r} is already registered")
    manager.register(plugin, name=name)
    return name


def unregister(plugin: object) -> bool:
    """Unregister ``plugin``; returns whether it was registered."""
    manager = plugin_manager()
    if not manager.is_registered(plugin):
        return False
    manager.unregister(plugin)
    return True


def on_plugins_changed(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a plugin is registered or unregistered (cheap, any thread)."""
    _listeners.append(listener)


def _load_entry_point_plugins(manager: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=PLUGIN_GROUP):
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=f"{PLUGIN_GROUP}:{entry_point.name}")
        except Exception:
            log.exception("wool plugin %r (%s) failed to load", entry_point.name, entry_point.value)
