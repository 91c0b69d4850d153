"""The worker's side of a task's life: admission, start, steps, end, and their events.

This is the one place where a worker emits task events (``task-started``,
``task-iteration-started``, ``task-stopped``) and asks the ``wool_admit_task`` hook.
Whatever must happen at those moments on the worker (log forwarding, trace context,
context variables) belongs in the methods of :class:`WorkerLifecycle`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from wool import _context_vars
from wool._event_bus import emit
from wool._events import TaskEvent
from wool._hooks import plugin_manager
from wool._scopes import Scopes, end, notify, open_run
from wool._worker_log_capture import current_sink

if TYPE_CHECKING:
    from wool._metadata import WorkerMetadata
    from wool._task import Task
    from wool._worker_load import WorkerLoad
    from wool._worker_log_capture import LogSink

log = logging.getLogger("wool.worker")


class WorkerLifecycle:
    """One task, as the worker that runs it lives it.

    ``stopped`` fires once, and only for a task that ``started``: a task refused by
    admission or never decoded has no lifecycle events on the worker.
    """

    __slots__ = (
        "_context",
        "_load",
        "_make_sink",
        "_scopes",
        "_sent",
        "_sink",
        "_state",
        "_steps",
        "task",
        "worker",
    )

    def __init__(
        self,
        task: Task,
        worker: WorkerMetadata,
        *,
        context: _context_vars.Values | None = None,
        sink: Callable[[Task, WorkerMetadata], LogSink] | None = None,
        load: WorkerLoad | None = None,
    ) -> None:
        self.task = task
        self.worker = worker
        self._steps = 0
        self._state = "arrived"
        self._context = context or {}
        self._sent: _context_vars.Values = {}
        self._make_sink = sink
        self._sink: LogSink | None = None
        self._load = load
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
        """The task was admitted and its routine is about to run.

        Called in the task's context: the caller's ``wool.ContextVar`` values are set in
        it, and its log sink installed.
        """
        self._state = "started"
        _context_vars.apply(self._context)
        self._sent = dict(self._context)
        if self._make_sink is not None:
            self._sink = self._make_sink(self.task, self.worker)
            current_sink.set(self._sink)
        emit("task-started", self.task, worker=self.worker.uid)
        self._scopes = open_run(self.task, self.worker)

    def context_arrived(self, data: bytes) -> None:
        """A generator step brought values the consumer changed: set them (task context)."""
        values = _context_vars.decode(data)
        _context_vars.apply(values)
        self._sent.update(values)

    def context_to_return(self, context: contextvars.Context) -> bytes:
        """The ``wool.ContextVar`` values the routine changed since they last travelled.

        Raises ``TypeError`` naming a value that cannot be pickled.
        """
        now = _context_vars.snapshot(context)
        changed = _context_vars.changes(self._sent, now)
        self._sent = now
        return _context_vars.encode(changed, self.task.routine)

    def before_item(self) -> None:
        """An item is about to go to the caller: the records logged before it go first."""
        if self._sink is not None:
            self._sink.flush(force=True)

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
        if self._sink is not None:
            self._sink.close()
        if self._load is not None:
            self._load.completed += 1
        name = None if exception is None else type(exception).__qualname__
        emit("task-stopped", self.task, worker=self.worker.uid, exception=name)
        if self._scopes:
            end(self._scopes, self.task, exception)
