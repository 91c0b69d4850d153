"""The benchmark suite runs end to end in its tiny ``--quick`` mode and writes its JSON.

Only the shape is checked, never a timing: performance is what the suite reports, not
something a test asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300

WORKLOADS = {
    "startup",
    "latency",
    "throughput",
    "lb_latency",
    "lb_throughput",
    "streaming",
    "prefetch",
    "payload",
    "result",
    "repeated",
    "script",
    "scale",
    "nested",
    "events",
    "discovery",
    "skewed",
    "exponential",
    "blocked",
    "two_callers",
}
BACKENDS = {
    "startup": {"wool", "ppe"},
    "latency": {"wool", "wool_tcp", "ppe", "grpc", "grpc_exchange", "grpc_session", "sock_session"},
    "throughput": {"wool", "ppe", "grpc"},
    "lb_latency": {"wool_lb", "wool_rr"},
    "lb_throughput": {"wool_lb", "wool_rr"},
    "streaming": {"wool", "grpc_pull", "grpc_pull_unix", "grpc_push", "sock_pull"},
    "prefetch": {"wool_prefetch", "grpc_push", "grpc_push_unix"},
    "payload": {"wool", "ppe", "grpc_bytes", "grpc"},
    "result": {"wool", "ppe", "grpc_bytes", "grpc"},
    "repeated": {"wool", "ppe", "grpc_bytes"},
    "script": {"wool", "importable"},
    "scale": {"wool", "wool_small", "ppe_scale"},
    "nested": {"wool"},
    "events": {"none", "noop", "sleep", "otel", "uvloop"},  # uvloop: a test dependency
    "discovery": {"local", "etcd"},
    "skewed": {"wool_lb1s", "ppe", "wool_lb1", "wool"},
    "exponential": {"wool_lb1s", "ppe", "wool_lb1", "wool"},
    "blocked": {"wool_lb", "wool"},
    "two_callers": {"wool_lb1", "ideal"},
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--repeats", "1", "--json", str(out)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    report = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, report
    return json.loads(out.read_text()), result.stdout


@pytest.mark.timeout(TIMEOUT + 30)
def test_quick_run_writes_every_result(quick_run: tuple[dict, str]) -> None:
    data, _ = quick_run
    assert data["ok"] is True, data["errors"]
    assert data["errors"] == []
    assert data["rounds"] == 1
    assert data["config"]["quick"] is True
    for key in ("cpu", "cores", "python", "grpcio", "wool"):
        assert data["machine"][key], key
    measured = {(r["workload"], r["backend"]) for r in data["results"] if r["available"]}
    assert {w for w, _ in measured} == WORKLOADS
    for workload, backends in BACKENDS.items():
        assert {b for w, b in measured if w == workload} == backends, workload
    for row in data["results"]:
        for key in ("metric", "unit", "better", "label", "backend_label", "median", "ratio"):
            assert key in row, (key, row)
        if not row["available"]:
            assert row["reason"] and row["median"] is None
            continue
        assert row["better"] in ("lower", "higher")
        assert row["n"] == 1 == len(row["samples"])
        assert row["median"] > 0 and row["min"] <= row["median"] <= row["max"]
    ratios = [r for r in data["results"] if r["ratio"] is not None]
    assert ratios and all(r["ratio"] > 0 for r in ratios)


@pytest.mark.timeout(TIMEOUT + 30)
def test_quick_run_checks_every_target(quick_run: tuple[dict, str]) -> None:
    data, stdout = quick_run
    targets = data["targets"]
    assert len(targets) >= 9
    assert {t["workload"] for t in targets} == WORKLOADS
    for target in targets:
        assert target["kind"] in ("ratio", "absolute")
        assert target["op"] in ("<", "<=", ">=")
        assert isinstance(target["value"], float)
        assert isinstance(target["met"], bool)
    met = sum(t["met"] for t in targets)
    assert f"targets met: {met} of {len(targets)}" in stdout
    assert "ratio" in stdout and "wool" in stdout
