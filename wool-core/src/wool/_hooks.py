"""The pluggy hook specifications of wool and the plugin manager of this process.

Every wool process (callers and workers alike) registers the plugins named in the
``wool.plugins`` entry-point group the first time it needs the plugin manager.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from wool._events import TaskEvent
    from wool._metadata import WorkerMetadata

PROJECT = "wool"
PLUGIN_GROUP = "wool.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

log = logging.getLogger("wool.plugins")


class WoolHookSpecs:
    """Hooks a wool plugin may implement with ``@wool.hookimpl``."""

    @hookspec
    def wool_task_event(self, event: TaskEvent, timestamp: int, context: object | None) -> None:
        """Called for every task lifecycle event, in the process where it happens.

        ``timestamp`` is ``time.time_ns()`` at the moment of the event. Implementations
        run on wool's event thread, never on the dispatch path: an exception is logged,
        and a slow implementation delays only later events. The return value is ignored.
        """

    @hookspec(firstresult=True)
    def wool_admit_task(self, event: TaskEvent, worker: WorkerMetadata) -> bool | str | None:
        """Called on a worker before it starts a task; may refuse the task.

        Return ``None`` to abstain, ``True`` to admit (no further plugin is asked), or
        ``False`` or a reason string to refuse: the caller's load balancer then treats
        the refusal as transient and tries another worker. Runs on the worker's event
        loop, so it must be quick.
        """

    @hookspec
    def wool_worker_started(self, worker: WorkerMetadata) -> None:
        """Called in a worker process once its server accepts calls. Return value ignored."""

    @hookspec
    def wool_worker_stopping(self, worker: WorkerMetadata) -> None:
        """Called in a worker process when it begins to stop. Return value ignored."""


_manager: pluggy.PluginManager | None = None
_lock = threading.Lock()


def plugin_manager() -> pluggy.PluginManager:
    """This process's plugin manager, with the entry-point plugins registered."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                manager = pluggy.PluginManager(PROJECT)
                manager.add_hookspecs(WoolHookSpecs)
                _load_entry_point_plugins(manager)
                _manager = manager
    return _manager


def _load_entry_point_plugins(manager: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=PLUGIN_GROUP):
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=f"{PLUGIN_GROUP}:{entry_point.name}")
        except Exception:
            log.exception("wool plugin %r (%s) failed to load", entry_point.name, entry_point.value)
