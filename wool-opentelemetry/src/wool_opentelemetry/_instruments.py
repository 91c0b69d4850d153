"""The metric instruments, made once from the global meter (bound when an SDK is set)."""

from __future__ import annotations

from opentelemetry import metrics

from wool_opentelemetry import _names as n
from wool_opentelemetry._version import VERSION


class Instruments:
    """The plugin's counters and histogram, from the global meter provider.

    Made from the API's proxy meter, they start recording once the application sets a
    meter provider, whenever it does.
    """

    def __init__(self) -> None:
        meter = metrics.get_meter(n.INSTRUMENTATION, VERSION)
        self.started = meter.create_counter(
            n.CALLS_STARTED, unit="{call}", description="Calls of wool routines started"
        )
        self.completed = meter.create_counter(
            n.CALLS_COMPLETED, unit="{call}", description="Calls that returned (or finished)"
        )
        self.failed = meter.create_counter(
            n.CALLS_FAILED, unit="{call}", description="Calls that raised (error.type says what)"
        )
        self.in_flight = meter.create_up_down_counter(
            n.CALLS_IN_FLIGHT, unit="{call}", description="Calls started and not yet ended"
        )
        self.duration = meter.create_histogram(
            n.CALL_DURATION, unit="s", description="From a call's start to its end, per side"
        )
        self.restarts = meter.create_counter(
            n.WORKER_RESTARTS,
            unit="{restart}",
            description="Workers replaced after exiting unexpectedly, counted by their supervisor",
        )
