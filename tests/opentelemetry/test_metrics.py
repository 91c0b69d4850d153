"""Calls counted and timed through the OpenTelemetry metrics API, in callers and workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

import wool
from tests.opentelemetry import routines as r
from tests.opentelemetry.conftest import caller_metrics, worker_records
from tests.support import conditions
from wool import _settings

pytestmark = pytest.mark.timeout(120)

BOUND = 60.0


def _caller(name: str, routine: str, **more: str) -> tuple[str, frozenset]:
    return (name, frozenset({"wool.routine": routine, "wool.side": "caller", **more}.items()))


def _delta(before: dict, after: dict, key: tuple) -> float:
    return after.get(key, 0) - before.get(key, 0)


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (checked every 20 ms), at most BOUND seconds."""
    await conditions.until(condition, what, BOUND, step=0.02)


async def test_calls_are_counted_and_timed_per_routine_in_caller_and_worker(
    caller_spans, worker_file
):
    before = caller_metrics()
    async with wool.WorkerPool(size=1):
        for i in range(3):
            assert await r.traced_add(i, 1) == i + 1
        for _ in range(2):
            with pytest.raises(r.TracedFailure):
                await r.traced_fail("no")
    after = caller_metrics()
    failure = "tests.opentelemetry.routines.TracedFailure"

    assert _delta(before, after, _caller("wool.calls.started", "traced_add")) == 3
    assert _delta(before, after, _caller("wool.calls.completed", "traced_add")) == 3
    assert _delta(before, after, _caller("wool.call.duration", "traced_add")) == 3
    assert _delta(before, after, _caller("wool.calls.started", "traced_fail")) == 2
    assert _delta(before, after, _caller("wool.calls.completed", "traced_fail")) == 0
    failed = _caller("wool.calls.failed", "traced_fail", **{"error.type": failure})
    assert _delta(before, after, failed) == 2
    assert after[_caller("wool.calls.in_flight", "traced_add")] == 0

    (stopped,) = [rec for rec in worker_records(worker_file) if "metrics" in rec]
    worker = {
        (p["name"], p["attributes"]["wool.routine"], p["attributes"].get("error.type")): p["value"]
        for p in stopped["metrics"]
    }
    assert all(p["attributes"]["wool.side"] == "worker" for p in stopped["metrics"])
    assert worker[("wool.calls.started", "traced_add", None)] == 3
    assert worker[("wool.calls.completed", "traced_add", None)] == 3
    assert worker[("wool.call.duration", "traced_add", None)] == 3
    assert worker[("wool.calls.in_flight", "traced_add", None)] == 0
    assert worker[("wool.calls.failed", "traced_fail", failure)] == 2


async def test_calls_in_flight_count_the_calls_not_yet_ended(caller_spans, worker_file):
    key = _caller("wool.calls.in_flight", "traced_countdown")
    async with wool.WorkerPool(size=1):
        stream = r.traced_countdown(5)
        assert await anext(stream) == 5
        assert caller_metrics()[key] == 1
        await stream.aclose()
        assert caller_metrics()[key] == 0


async def test_worker_restarts_are_counted_by_the_supervising_process(caller_spans):
    def restarts() -> float:
        return caller_metrics().get(("wool.worker.restarts", frozenset()), 0)

    before = restarts()
    with _settings.override(restart_backoff=0.01, restart_backoff_max=0.05):
        async with wool.WorkerPool(size=1):
            pid = await r.traced_pid()
            os.kill(pid, signal.SIGKILL)
            await _until(lambda: restarts() == before + 1, "a counted restart")
            assert await r.traced_pid() != pid


def test_without_an_sdk_the_plugin_follows_nothing_and_adds_no_headers():
    # A fresh interpreter: this one has an SDK. Nothing configured, no current span.
    script = (
        "import wool, wool_opentelemetry as w\n"
        "event = wool.TaskEvent(type='task-created', task_id='t-1', routine='f')\n"
        "headers = {}\n"
        "assert w.plugin.wool_call_scope(event, headers) is None, 'a scope'\n"
        "assert headers == {}, headers\n"
        "worker = wool.WorkerMetadata(uid='w', address='127.0.0.1:1', pid=1, version='0')\n"
        "started = wool.TaskEvent(type='task-started', task_id='t-1', routine='f')\n"
        "assert w.plugin.wool_run_scope(started, {}, worker) is None\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_process_without_an_sdk_passes_the_trace_context_on():
    # A worker with no SDK runs a task that came with trace context: its nested calls
    # carry the same trace, so the spans of processes that do trace stay in one trace.
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    script = (
        "import wool, wool_opentelemetry as w\n"
        "worker = wool.WorkerMetadata(uid='w', address='127.0.0.1:1', pid=1, version='0')\n"
        "started = wool.TaskEvent(type='task-started', task_id='t-1', routine='f')\n"
        f"assert w.plugin.wool_run_scope(started, {{'traceparent': {parent!r}}}, worker) is None\n"
        "headers = {}\n"
        "event = wool.TaskEvent(type='task-created', task_id='t-2', routine='g')\n"
        "assert w.plugin.wool_call_scope(event, headers) is None\n"
        "print(headers['traceparent'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND
    )
    assert done.stdout.strip() == parent, done.stderr
