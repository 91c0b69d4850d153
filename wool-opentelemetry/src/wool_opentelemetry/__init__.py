"""OpenTelemetry tracing and metrics for wool, as a ``wool.plugins`` plugin.

Installed, it is registered in every wool process through its ``opentelemetry`` entry
point: each call gets a span in the caller and one around its run on the worker, joined
into one trace by W3C trace context carried in the task, and the calls are counted and
timed through the OpenTelemetry metrics API. It only uses ``opentelemetry-api``: the
application configures an SDK (exporters, sampling) where it wants the data; where none
is configured the plugin records nothing and costs little.
"""

from __future__ import annotations

from wool_opentelemetry._names import INSTRUMENTATION, METRICS, SPAN_ATTRIBUTES
from wool_opentelemetry._plugin import OpenTelemetryPlugin

plugin = OpenTelemetryPlugin()
"""The instance the ``opentelemetry`` entry point registers in every wool process."""

__all__ = ["INSTRUMENTATION", "METRICS", "SPAN_ATTRIBUTES", "OpenTelemetryPlugin", "plugin"]
