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
- Local files: :func:`private_directory` is this user's directory for what a plugin keeps
  on the local filesystem (mode 0700, checked before use; ``$WOOL_LOCAL_DIR`` overrides
  it), and :func:`open_private` opens a file there without following links, blocking on
  a FIFO or trusting a file of another user.
- Logging what others send: :func:`printable` escapes control characters in a field
  read from elsewhere, and :class:`LimitFilter` rate-limits repeated warnings.
- Discovery publishers: subclass :class:`DiscoveryPublisher` for the context manager and
  the checks of ``publish()`` that every publisher shares.
"""

from __future__ import annotations

from wool._discovery_publisher import DiscoveryPublisher
from wool._handlers import remove_task_event_handler, task_event_handler
from wool._hooks import PLUGIN_GROUP, hookimpl, hookspec, register, unregister
from wool._log_limit import LimitFilter, printable
from wool._plugins import DISCOVERY_GROUP, LOADBALANCER_GROUP, PluginNotFound, installed, load
from wool._private_files import (
    DIRECTORY_VARIABLE,
    check_private_directory,
    open_private,
    private_directory,
)
from wool._scopes import TaskScope

__all__ = [
    "DIRECTORY_VARIABLE",
    "DISCOVERY_GROUP",
    "LOADBALANCER_GROUP",
    "PLUGIN_GROUP",
    "DiscoveryPublisher",
    "LimitFilter",
    "PluginNotFound",
    "TaskScope",
    "check_private_directory",
    "hookimpl",
    "hookspec",
    "installed",
    "load",
    "open_private",
    "printable",
    "private_directory",
    "register",
    "remove_task_event_handler",
    "task_event_handler",
    "unregister",
]
