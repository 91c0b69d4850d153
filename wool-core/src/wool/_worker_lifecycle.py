"""The worker's side of a task's life: admission, start, steps, end, and their events.

This is the one place where a worker emits task events (``task-started``,
``task-iteration-started``, ``task-stopped``) and asks the ``wool_admit_task`` hook.
Whatever must happen at those moments on the worker (log forwarding, trace context,
context variables) belongs in the methods of :class:`WorkerLifecycle`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from wool._event_bus import emit
from wool._events import TaskEvent
from wool._hooks import plugin_manager
from wool._scopes import Scopes, end, notify, open_run

if TYPE_CHECKING:
    from wool._metadata import WorkerMetadata
    from wool._task import Task

log = logging.getLogger("wool.worker")


class WorkerLifecycle:
    """One task, as the worker that runs it lives it.

    ``stopped`` fires once, and only for a task that ``started``: a task refused by
    admission or never decoded has no lifecycle events on the worker.
    """

    __slots__ = ("_scopes", "_state", "_steps", "task", "worker")

    def __init__(self, task: Task, worker: WorkerMetadata) -> None:
        self.task = task
        self.worker = worker
        self._steps = 0
        self._state = "arrived"
        self._scopes: Scopes | None = None
        """What the ``wool_run_scope`` plugins follow the run with (tracing spans...)."""

    def admit(self) -> str | None:
        """Ask the ``wool_admit_task`` plugins: None to run the task, else why it is refused."""
        hook = plugin_manager().hook.wool_admit_task
        if not hook.get_hookimpls():
            return None
        task = self.task
        event = TaskEvent(
            type="task-started",
            task_id=task.id,
            routine=task.routine,
            parent_id=task.parent_id,
            tags=task.tags,
            worker=self.worker.uid,
        )
        try:
            verdict = hook(event=event, worker=self.worker)
        except Exception:
            log.exception("wool_admit_task failed; admitting %s", task.routine)
            return None
        if verdict is None or verdict is True:
            return None
        return verdict if isinstance(verdict, str) else "refused by a wool_admit_task plugin"

    def started(self) -> None:
        """The task was admitted and its routine is about to run (called in its context)."""
        self._state = "started"
        emit("task-started", self.task, worker=self.worker.uid)
        self._scopes = open_run(self.task, self.worker)

    def iteration_started(self, kind: str) -> None:
        """A generator step (``next``, ``send``, ``throw``, ``close``) begins."""
        self._steps += 1
        emit(
            "task-iteration-started",
            self.task,
            worker=self.worker.uid,
            step=self._steps,
            kind=kind,
        )
        if self._scopes:
            fields = {"worker": self.worker.uid, "step": self._steps, "kind": kind}
            notify(self._scopes, "task-iteration-started", self.task, self.worker, **fields)

    def stopped(self, exception: BaseException | None) -> None:
        """The routine ended here (``exception``: what ended it, if anything did)."""
        if self._state != "started":
            return
        self._state = "stopped"
        name = None if exception is None else type(exception).__qualname__
        emit("task-stopped", self.task, worker=self.worker.uid, exception=name)
        if self._scopes:
            end(self._scopes, self.task, exception)
