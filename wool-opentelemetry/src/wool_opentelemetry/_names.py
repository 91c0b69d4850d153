"""The names this plugin gives to its tracer, meter, instruments and attributes."""

from __future__ import annotations

INSTRUMENTATION = "wool_opentelemetry"
"""The name of the tracer and of the meter (the instrumentation scope)."""

ROUTINE = "wool.routine"
TASK_ID = "wool.task.id"
PARENT_ID = "wool.task.parent_id"
TAGS = "wool.tags"
WORKER_UID = "wool.worker.uid"
WORKER_ADDRESS = "wool.worker.address"
SIDE = "wool.side"
STEP = "wool.step"
STEP_KIND = "wool.step.kind"
EXCEPTION = "wool.exception"
ERROR_TYPE = "error.type"

SPAN_ATTRIBUTES = (ROUTINE, TASK_ID, PARENT_ID, TAGS, WORKER_UID, WORKER_ADDRESS, ERROR_TYPE)
"""The attributes of the spans (``wool.task.parent_id`` and ``wool.tags`` when not empty,
``error.type`` when the call failed)."""

CALLS_STARTED = "wool.calls.started"
CALLS_COMPLETED = "wool.calls.completed"
CALLS_FAILED = "wool.calls.failed"
CALLS_IN_FLIGHT = "wool.calls.in_flight"
CALL_DURATION = "wool.call.duration"
WORKER_RESTARTS = "wool.worker.restarts"

METRICS = (
    CALLS_STARTED,
    CALLS_COMPLETED,
    CALLS_FAILED,
    CALLS_IN_FLIGHT,
    CALL_DURATION,
    WORKER_RESTARTS,
)
"""The instruments, in the order the README describes them."""
