"""A hook implementation that counts how tasks end, per routine."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Literal

import wool

log = logging.getLogger("wool_plugin_example")

Side = Literal["caller", "worker"]


class OutcomeCounter:
    """Counts task outcomes per routine in the process it is registered in.

    A caller counts ``task-completed`` events (what the code that called the routine
    saw); a worker counts ``task-stopped`` events (how the routine ended there). An
    outcome is ``"ok"`` or the name of the exception type that ended the task.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Side, dict[str, collections.Counter[str]]] = {
            "caller": {},
            "worker": {},
        }

    # A hook implementation may take any subset of the hook's arguments.
    @wool.hookimpl
    def wool_task_event(self, event: wool.TaskEvent) -> None:
        """Count the end of a task (runs on wool's event thread)."""
        if event.type == "task-completed":
            side: Side = "caller"
        elif event.type == "task-stopped":
            side = "worker"
        else:
            return
        with self._lock:
            routines = self._counts[side]
            routines.setdefault(event.routine, collections.Counter())[event.exception or "ok"] += 1

    @wool.hookimpl
    def wool_worker_stopping(self, worker: wool.WorkerMetadata) -> None:
        """Log what this worker ran, as it stops."""
        log.info("task outcomes on worker %s: %s", worker.uid, self.snapshot("worker"))

    def snapshot(self, side: Side = "caller") -> dict[str, dict[str, int]]:
        """The counts so far: ``{routine: {outcome: count}}``."""
        with self._lock:
            return {routine: dict(counts) for routine, counts in self._counts[side].items()}

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            for routines in self._counts.values():
                routines.clear()
