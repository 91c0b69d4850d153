"""The two task scopes: a call's span in the caller, a run's span on the worker.

Each scope also counts and times its call through the instruments; it exists only when a
tracer or a meter provider is configured (or trace context passes through).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

import wool
from wool_opentelemetry import _names as n
from wool_opentelemetry._instruments import Instruments


def task_attributes(event: wool.TaskEvent) -> dict[str, Any]:
    """The attributes naming a task: routine, id, parent and tags."""
    attributes: dict[str, Any] = {n.ROUTINE: event.routine, n.TASK_ID: event.task_id}
    if event.parent_id:
        attributes[n.PARENT_ID] = event.parent_id
    if event.tags:
        attributes[n.TAGS] = sorted(event.tags)
    return attributes


def worker_attributes(worker: wool.WorkerMetadata) -> dict[str, Any]:
    """The attributes naming a worker: its uid and address."""
    return {n.WORKER_UID: worker.uid, n.WORKER_ADDRESS: worker.address}


def error_type(exception: BaseException) -> str:
    """The fully qualified name of an exception's type (``error.type``)."""
    kind = type(exception)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


class TaskSpan:
    """One side of one call: its span (if traced) and its metrics (if measured)."""

    __slots__ = ("_instruments", "_labels", "_started", "span")

    def __init__(
        self,
        span: Span | None,
        instruments: Instruments | None,
        routine: str,
        side: str,
    ) -> None:
        self.span = span
        self._instruments = instruments
        self._labels = {n.ROUTINE: routine, n.SIDE: side}
        self._started = time.perf_counter()
        if instruments is not None:
            instruments.started.add(1, self._labels)
            instruments.in_flight.add(1, self._labels)

    def event(self, event: wool.TaskEvent, worker: wool.WorkerMetadata | None) -> None:
        """Generator steps and other task events become span events."""
        span = self.span
        if span is None:
            return
        if event.type == "task-scheduled" and worker is not None:
            span.set_attributes(worker_attributes(worker))
        attributes: dict[str, Any] = {}
        if event.worker:
            attributes[n.WORKER_UID] = event.worker
        if event.step is not None:
            attributes[n.STEP] = event.step
        if event.kind is not None:
            attributes[n.STEP_KIND] = event.kind
        if event.exception is not None:
            attributes[n.EXCEPTION] = event.exception
        span.add_event(event.type, attributes)

    def end(self, exception: BaseException | None) -> None:
        """Record how the call ended, end the span and count the call."""
        instruments = self._instruments
        if instruments is not None:
            labels = self._labels
            instruments.in_flight.add(-1, labels)
            instruments.duration.record(time.perf_counter() - self._started, labels)
            if exception is None:
                instruments.completed.add(1, labels)
            else:
                instruments.failed.add(1, {**labels, n.ERROR_TYPE: error_type(exception)})
        span = self.span
        if span is None:
            return
        if exception is not None:
            kind = error_type(exception)
            span.record_exception(exception, escaped=True)
            span.set_attribute(n.ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, f"{kind}: {exception}"))
        span.end()
