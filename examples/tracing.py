"""Tracing and metrics with wool-opentelemetry: one trace per call, across caller and worker.

Needs ``pip install 'wool[opentelemetry]' opentelemetry-sdk``. The plugin registers itself
through its entry point; this script only configures an OpenTelemetry SDK. To show the
whole trace in one place it uses ``wool.testing.InProcessPool``: real workers (gRPC and
all) served in this process, so this one SDK sees the caller's spans and the workers'.
With a ``WorkerPool`` each worker process exports its own ``run`` spans through the SDK
it configures, and the trace context travelling in each task joins them.
"""

import asyncio

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import wool
import wool.testing

spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


@wool.routine
async def square(x: int) -> int:
    return x * x


@wool.routine
async def sum_of_squares(n: int) -> int:
    async with asyncio.TaskGroup() as group:  # nested calls: children of this run's span
        tasks = [group.create_task(square(i)) for i in range(n)]
    return sum(task.result() for task in tasks)


@wool.routine
async def countdown(n: int):
    for i in range(n, 0, -1):
        yield i


@wool.routine
async def parse(text: str) -> int:
    return int(text)


def show(span: ReadableSpan, children: dict, depth: int = 0) -> None:
    attributes = span.attributes or {}
    line = f"{'  ' * depth}{span.name} [{span.kind.name}] task {attributes['wool.task.id']}"
    if "error.type" in attributes:
        line += f" failed: {attributes['error.type']}"
    events = [e.name for e in span.events if e.name != "task-scheduled"]
    if events:
        line += f" (events: {', '.join(sorted(set(events)))}; {len(events)} in all)"
    print(line)
    for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0):
        show(child, children, depth + 1)


async def main() -> None:
    async with wool.testing.InProcessPool(2):
        print(f"sum_of_squares(3) = {await sum_of_squares(3)}")
        print(f"countdown(3) = {[i async for i in countdown(3)]}")
        try:
            await parse("forty-two")
        except ValueError as error:
            print(f"parse('forty-two') raised ValueError: {error}")

    finished = spans.get_finished_spans()
    children: dict = {}
    for span in finished:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    roots = sorted((s for s in finished if s.parent is None), key=lambda s: s.start_time or 0)
    print(f"{len(finished)} spans in {len({s.context.trace_id for s in finished})} traces:")
    for root in roots:
        show(root, children)

    data = reader.get_metrics_data()
    assert data is not None
    for metric in data.resource_metrics[0].scope_metrics[0].metrics:
        if metric.name in ("wool.calls.completed", "wool.calls.failed"):
            for point in sorted(
                metric.data.data_points, key=lambda p: sorted(p.attributes.items())
            ):
                labels = ", ".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                print(f"{metric.name} {{{labels}}} = {point.value}")


asyncio.run(main())
