"""The hook implementations: wool's scope hooks, answered with OpenTelemetry spans."""

from __future__ import annotations

import time
from collections.abc import Mapping

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind

import wool
from wool_opentelemetry import _names as n
from wool_opentelemetry._instruments import Instruments
from wool_opentelemetry._spans import TaskSpan, task_attributes, worker_attributes
from wool_opentelemetry._version import VERSION

RECHECK_SECONDS = 0.1
"""How often a process with no SDK yet looks again (looking costs more than a call's
spans would): an SDK set after the first calls is in use within this time."""


def _configured(provider: object) -> bool:
    """Whether ``provider`` is an SDK's: the API's own providers (proxies, no-ops) record
    nothing, so a call need not pay for spans or measurements they would drop."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


class _Providers:
    """Whether an SDK tracer provider and meter provider are set in this process.

    OpenTelemetry sets each global provider once, so a provider found stays; one not
    found yet is looked for again at most every :data:`RECHECK_SECONDS`.
    """

    __slots__ = ("_next", "measuring", "tracing")

    def __init__(self) -> None:
        self.tracing = False
        self.measuring = False
        self._next = 0.0

    def refresh(self) -> None:
        if self.tracing and self.measuring:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + RECHECK_SECONDS
        self.tracing = self.tracing or _configured(trace.get_tracer_provider())
        self.measuring = self.measuring or _configured(metrics.get_meter_provider())


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
        self._providers = _Providers()
        self._instruments: Instruments | None = None

    def _measuring(self) -> Instruments | None:
        if not self._providers.measuring:
            return None
        if self._instruments is None:
            self._instruments = Instruments()
        return self._instruments

    @wool.hookimpl
    def wool_call_scope(self, event: wool.TaskEvent, headers: dict[str, str]) -> TaskSpan | None:
        """Start the caller's span of a call and put its trace context in ``headers``."""
        self._providers.refresh()
        instruments = self._measuring()
        span = None
        if self._providers.tracing:
            span = self._tracer.start_span(
                f"call {event.routine}", kind=SpanKind.CLIENT, attributes=task_attributes(event)
            )
            propagate.inject(headers, context=trace.set_span_in_context(span))
        elif context.get_current():  # not traced here: pass the caller's context on
            propagate.inject(headers)
        if span is None and instruments is None:
            return None
        return TaskSpan(span, instruments, event.routine, "caller")

    @wool.hookimpl
    def wool_run_scope(
        self, event: wool.TaskEvent, headers: Mapping[str, str], worker: wool.WorkerMetadata
    ) -> TaskSpan | None:
        """Start the worker's span of a run, as the current span of the task's context."""
        self._providers.refresh()
        instruments = self._measuring()
        span = None
        if self._providers.tracing:
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
        self._providers.refresh()
        instruments = self._measuring()
        if instruments is not None:
            instruments.restarts.add(1)
