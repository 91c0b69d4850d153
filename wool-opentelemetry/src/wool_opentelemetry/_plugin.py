"""The hook implementations: wool's scope hooks, answered with OpenTelemetry spans."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind

import wool
from wool_opentelemetry import _names as n
from wool_opentelemetry._instruments import Instruments
from wool_opentelemetry._spans import TaskSpan, task_attributes, worker_attributes
from wool_opentelemetry._version import VERSION


def _configured(provider: object) -> bool:
    """Whether ``provider`` is an SDK's: the API's own providers (proxies, no-ops) record
    nothing, so a call need not pay for spans or measurements they would drop."""
    return not type(provider).__module__.startswith(
        ("opentelemetry.trace", "opentelemetry.metrics")
    )


class OpenTelemetryPlugin:
    """Spans and metrics for every call, through the global OpenTelemetry providers.

    In a caller, a ``CLIENT`` span ``call <routine>`` covers a call from the moment it is
    made to its end, and the W3C trace context of that span (the global propagator's
    fields, ``traceparent`` and ``tracestate`` by default) travels in the task. On the
    worker, a ``SERVER`` span ``run <routine>``, its child, covers the run and is the
    current span while the routine runs, so nested calls are its children. Generator
    steps and task events become span events, exceptions are recorded with their type,
    and attributes name the routine, the task and the worker.
    """

    def __init__(self) -> None:
        self._tracer = trace.get_tracer(n.INSTRUMENTATION, VERSION)
        self._instruments: Instruments | None = None

    def _measuring(self) -> Instruments | None:
        if not _configured(metrics.get_meter_provider()):
            return None
        if self._instruments is None:
            self._instruments = Instruments()
        return self._instruments

    @wool.hookimpl
    def wool_call_scope(self, event: wool.TaskEvent, headers: dict[str, str]) -> TaskSpan | None:
        """Start the caller's span of a call and put its trace context in ``headers``."""
        instruments = self._measuring()
        span = None
        if _configured(trace.get_tracer_provider()):
            span = self._tracer.start_span(
                f"call {event.routine}", kind=SpanKind.CLIENT, attributes=task_attributes(event)
            )
            propagate.inject(headers, context=trace.set_span_in_context(span))
        elif trace.get_current_span().get_span_context().is_valid:
            propagate.inject(headers)  # not traced here: pass the caller's trace on
        if span is None and instruments is None:
            return None
        return TaskSpan(span, instruments, event.routine, "caller")

    @wool.hookimpl
    def wool_run_scope(
        self, event: wool.TaskEvent, headers: Mapping[str, str], worker: wool.WorkerMetadata
    ) -> TaskSpan | None:
        """Start the worker's span of a run, as the current span of the task's context."""
        instruments = self._measuring()
        span = None
        if _configured(trace.get_tracer_provider()):
            parent = propagate.extract(headers) if headers else None
            attributes = {**task_attributes(event), **worker_attributes(worker)}
            span = self._tracer.start_span(
                f"run {event.routine}", parent, kind=SpanKind.SERVER, attributes=attributes
            )
            # The task's context is its own and is dropped with it: nothing to detach.
            context.attach(trace.set_span_in_context(span, parent))
        elif headers:
            context.attach(propagate.extract(headers))  # not traced here: pass it on
        if span is None and instruments is None:
            return None
        return TaskSpan(span, instruments, event.routine, "worker")

    @wool.hookimpl
    def wool_worker_restarted(
        self, dead: wool.WorkerMetadata, replacement: wool.WorkerMetadata
    ) -> None:
        """Count the restart on ``wool.worker.restarts``."""
        instruments = self._measuring()
        if instruments is not None:
            instruments.restarts.add(1)
