"""One trace per call across processes: the caller's span, the worker's span, nested calls."""

from __future__ import annotations

import signal

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import wool
from tests.cli.helpers import BOUND, namespace, running
from tests.opentelemetry import routines as r
from tests.opentelemetry.conftest import worker_records

pytestmark = pytest.mark.timeout(120)


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def _worker_spans(path):
    return [record for record in worker_records(path) if "span" in record]


async def test_a_call_is_one_trace_across_caller_and_worker(caller_spans, worker_file):
    tracer = trace.get_tracer("tests")
    async with wool.WorkerPool(size=1) as pool:
        with tracer.start_as_current_span("request") as root:
            assert await r.traced_add(1, 2) == 3
        worker = pool.workers[0].metadata
    assert worker is not None

    spans = {s.name: s for s in caller_spans.get_finished_spans()}
    call = spans["call traced_add"]
    assert call.kind is SpanKind.CLIENT
    assert call.parent is not None and call.parent.span_id == root.get_span_context().span_id
    assert call.context.trace_id == root.get_span_context().trace_id
    attributes = dict(call.attributes or {})
    assert attributes["wool.routine"] == "traced_add"
    assert attributes["wool.worker.uid"] == worker.uid
    assert attributes["wool.worker.address"] == worker.address
    task_id = attributes["wool.task.id"]
    assert [e.name for e in call.events] == ["task-scheduled"]

    (run,) = _worker_spans(worker_file)
    assert run["span"] == "run traced_add"
    assert run["kind"] == "SERVER"
    assert run["pid"] == worker.pid
    assert run["trace_id"] == _hex(call.context.trace_id, 32)
    assert run["parent_id"] == _hex(call.context.span_id, 16)
    assert run["attributes"] == {
        "wool.routine": "traced_add",
        "wool.task.id": task_id,
        "wool.worker.uid": worker.uid,
        "wool.worker.address": worker.address,
    }
    assert run["status"] == "UNSET"


async def test_nested_calls_are_children_of_the_run_that_made_them(caller_spans, worker_file):
    async with wool.WorkerPool(size=2):
        assert await r.traced_sum_of_squares(3) == 0 + 1 + 4

    (outer_call,) = caller_spans.get_finished_spans()
    assert outer_call.name == "call traced_sum_of_squares"
    assert outer_call.parent is None, "a call made outside any span starts a trace"
    trace_id = _hex(outer_call.context.trace_id, 32)
    spans = _worker_spans(worker_file)
    assert {s["trace_id"] for s in spans} == {trace_id}
    by_name: dict[str, list[dict]] = {}
    for span in spans:
        by_name.setdefault(span["span"], []).append(span)
    (outer_run,) = by_name["run traced_sum_of_squares"]
    assert outer_run["parent_id"] == _hex(outer_call.context.span_id, 16)
    inner_calls = by_name["call traced_square"]
    inner_runs = by_name["run traced_square"]
    assert len(inner_calls) == len(inner_runs) == 3
    # the nested calls are made on the worker, inside the outer run
    assert {c["parent_id"] for c in inner_calls} == {outer_run["span_id"]}
    assert all(c["pid"] == outer_run["pid"] and c["kind"] == "CLIENT" for c in inner_calls)
    assert sorted(run["parent_id"] for run in inner_runs) == sorted(
        c["span_id"] for c in inner_calls
    )
    outer_task = outer_run["attributes"]["wool.task.id"]
    assert {c["attributes"]["wool.task.parent_id"] for c in inner_calls} == {outer_task}


async def test_generator_steps_become_span_events(caller_spans, worker_file):
    async with wool.WorkerPool(size=1):
        assert [i async for i in r.traced_countdown(3)] == [3, 2, 1]

    (call,) = caller_spans.get_finished_spans()
    names = [e.name for e in call.events]
    assert (
        names
        == ["task-scheduled"]
        + [
            "task-iteration-initiated",
            "task-iteration-completed",
        ]
        * 4
    )
    last = dict(call.events[-1].attributes or {})
    assert last == {
        "wool.worker.uid": last["wool.worker.uid"],
        "wool.step": 4,
        "wool.step.kind": "next",
        "wool.exception": "StopAsyncIteration",
    }
    assert call.status.status_code is StatusCode.UNSET

    (run,) = _worker_spans(worker_file)
    assert [e["name"] for e in run["events"]] == ["task-iteration-started"] * 4
    assert [e["attributes"]["wool.step"] for e in run["events"]] == [1, 2, 3, 4]
    assert run["parent_id"] == _hex(call.context.span_id, 16)


async def test_exceptions_are_recorded_with_their_type_on_both_sides(caller_spans, worker_file):
    async with wool.WorkerPool(size=1):
        with pytest.raises(r.TracedFailure, match="boom"):
            await r.traced_fail("boom")

    expected = "tests.opentelemetry.routines.TracedFailure"
    (call,) = caller_spans.get_finished_spans()
    assert call.status.status_code is StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == expected
    (exception,) = [e for e in call.events if e.name == "exception"]
    assert dict(exception.attributes or {})["exception.type"] == expected
    assert dict(exception.attributes or {})["exception.message"].startswith("boom")

    (run,) = _worker_spans(worker_file)
    assert run["status"] == "ERROR"
    assert run["attributes"]["error.type"] == expected
    (exception,) = [e for e in run["events"] if e["name"] == "exception"]
    assert exception["attributes"]["exception.type"] == expected
    assert exception["attributes"]["exception.message"] == "boom"


async def test_durable_workers_of_wool_worker_join_the_callers_trace(caller_spans, tmp_path):
    path = tmp_path / "durable.jsonl"
    ns = namespace()
    env = {"WOOL_FIXTURE_OTEL_FILE": str(path)}
    async with running("worker", "--size", "1", "--namespace", ns, env=env) as command:
        (started,) = await command.ready()
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([started.uid], timeout=BOUND)
            assert await r.traced_add(2, 3) == 5
        command.send_signal(signal.SIGTERM)
        result = await command.finish()
    assert result.returncode == 0, result.stderr

    (call,) = caller_spans.get_finished_spans()
    (run,) = _worker_spans(path)
    assert run["span"] == "run traced_add" and run["pid"] == started.pid
    assert run["trace_id"] == _hex(call.context.trace_id, 32)
    assert run["parent_id"] == _hex(call.context.span_id, 16)
    assert run["attributes"]["wool.worker.uid"] == started.uid
    assert run["attributes"]["wool.worker.address"] == started.address
