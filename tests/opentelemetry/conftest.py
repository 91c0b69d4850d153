"""An OpenTelemetry SDK in this (caller) process, and the worker spans read back from a file.

The SDK is set once per process (OpenTelemetry allows one global provider); spans reach
the in-memory exporter only while a test of this folder captures them. Workers configure
their own SDK through the fixture plugin's ``fixture-otel`` hooks, which append their
spans (and, as they stop, their metrics) to ``$WOOL_FIXTURE_OTEL_FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wool_fixture_plugin.otel import metric_points


class _Gate(SimpleSpanProcessor):
    """Exports only while a test captures, so other suites do not fill the exporter."""

    capturing = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.capturing:
            super().on_end(span)


EXPORTER = InMemorySpanExporter()
GATE = _Gate(EXPORTER)
READER = InMemoryMetricReader()


def _install() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(GATE)
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


@pytest.fixture
def caller_spans() -> Iterator[InMemorySpanExporter]:
    """The spans this process finishes during the test."""
    _install()
    EXPORTER.clear()
    GATE.capturing = True
    try:
        yield EXPORTER
    finally:
        GATE.capturing = False
        EXPORTER.clear()


@pytest.fixture
def worker_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the workers spawned during the test write their spans and metrics to."""
    path = tmp_path / "worker-telemetry.jsonl"
    monkeypatch.setenv("WOOL_FIXTURE_OTEL_FILE", str(path))
    return path


def worker_records(path: Path) -> list[dict[str, Any]]:
    """Every line the workers wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def caller_metrics() -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
    """This process's metrics now: (name, attributes) -> value (a histogram: its count)."""
    _install()
    return {
        (name, frozenset(attributes.items())): value
        for name, attributes, value in metric_points(READER)
    }
