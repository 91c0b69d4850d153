"""wool.plugins: what a plugin author needs from wool, in one public module.

- Hooks: decorate functions with :data:`hookimpl` (named after a hook of
  ``wool_task_event``, ``wool_admit_task``, ``wool_worker_started``,
  ``wool_worker_stopping``, ``wool_call_scope``, ``wool_run_scope``,
  ``wool_worker_restarted``) in a module or on an object, then either publish it in the
  :data:`PLUGIN_GROUP` entry-point group (every wool process loads it) or
  :func:`register` it in this process. :func:`task_event_handler` registers a plain
  function for some task event types. The two scope hooks return a :class:`TaskScope`.
- Discovery and load-balancer plugins are classes published in the
  :data:`DISCOVERY_GROUP` and :data:`LOADBALANCER_GROUP` entry-point groups;
  :func:`load` finds one by name and :func:`installed` lists the names.
"""

from __future__ import annotations

from wool._handlers import remove_task_event_handler, task_event_handler
from wool._hooks import PLUGIN_GROUP, hookimpl, hookspec, register, unregister
from wool._plugins import DISCOVERY_GROUP, LOADBALANCER_GROUP, PluginNotFound, installed, load
from wool._scopes import TaskScope

__all__ = [
    "DISCOVERY_GROUP",
    "LOADBALANCER_GROUP",
    "PLUGIN_GROUP",
    "PluginNotFound",
    "TaskScope",
    "hookimpl",
    "hookspec",
    "installed",
    "load",
    "register",
    "remove_task_event_handler",
    "task_event_handler",
    "unregister",
]
