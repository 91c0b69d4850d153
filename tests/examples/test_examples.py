"""Every script in examples/ runs to completion and prints what it demonstrates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 120

# script -> lines (or regular expressions, marked re:) its output must contain
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": ["3"],
    "fib_taskgroup.py": ["fib(12) = 144"],
    "fib_stream.py": ["first 10 Fibonacci numbers: [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]"],
    "methods.py": [
        "instance method: Calculator(10).add(1, 2) = 13",
        "class method: Calculator.name() = Calculator",
        "static method: Calculator.multiply(6, 7) = 42",
    ],
    "pool_modes.py": [
        r"re:default: ran on worker \d+",
        r"re:ephemeral \(tag gpu-capable\): ran on worker \d+",
        r"re:hybrid: ran on worker \d+",
        r"re:durable: ran on worker \d+",
    ],
    "loadbalancer.py": [
        r"re:RoundRobinLoadBalancer\(\) instance: workers \[\d+, \d+, \d+, \d+\]",
        r're:loadbalancer="roundrobin": workers \[\d+, \d+, \d+, \d+\]',
        r"re:LeastBusy\(\): workers \[\d+, \d+, \d+, \d+\]",
    ],
    "events.py": [
        "add(1, 2) = 3",
        r"re:event task-created add [0-9a-f]+-[0-9]+",
        r"re:event task-completed add [0-9a-f]+-[0-9]+",
    ],
    "worker_logs.py": [
        r"re:INFO inventory \[restock on worker-\w+\] restocking 3 x apples",
        r"re:INFO wool.worker.stdout \[restock on worker-\w+\] counted 3 apples",
    ],
    "context_vars.py": [
        "the routine saw req-42",
        "after the call: req-42, handled",
        "after create_task: req-42, handled",
        "item 0: step 0",
        "item 1: step 1",
    ],
    "watch_load.py": ["10 calls completed on 2 workers"],
    "tracing.py": [
        "sum_of_squares(3) = 5",
        "12 spans in 3 traces:",
        r"re:call sum_of_squares \[CLIENT\] task \S+",
        r"re:  run sum_of_squares \[SERVER\] task \S+",
        r"re:    call square \[CLIENT\] task \S+",
        r"re:      run square \[SERVER\] task \S+",
        r"re:  run countdown \[SERVER\] task \S+ \(events: task-iteration-started; 4 in all\)",
        r"re:call parse \[CLIENT\] task \S+ failed: ValueError \(events: exception; 1 in all\)",
        r"re:  run parse \[SERVER\] task \S+ failed: ValueError \(events: exception; 1 in all\)",
        "wool.calls.completed {wool.routine=square, wool.side=worker} = 3",
        "wool.calls.failed {error.type=ValueError, wool.routine=parse, wool.side=caller} = 1",
    ],
    "errors.py": [
        "parse('42') = 42",
        "Task failed: invalid literal for int() with base 10: 'forty-two'",
    ],
}


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.timeout(TIMEOUT + 60)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name: str, tmp_path: Path) -> None:
    result = run_example(name, tmp_path)
    report = (
        f"{name} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert result.returncode == 0, report
    lines = result.stdout.splitlines()
    for expected in EXPECTED[name]:
        if expected.startswith("re:"):
            pattern = re.compile(expected[3:])
            assert any(pattern.fullmatch(line) for line in lines), (
                f"no line matches {pattern.pattern!r}\n{report}"
            )
        else:
            assert expected in lines, f"missing line {expected!r}\n{report}"
    if name == "loadbalancer.py":  # round robin over 2 workers uses both of them
        for line in lines:
            pids = re.findall(r"\d+", line.partition("workers")[2])
            assert len(set(pids)) == 2, f"expected both workers in {line!r}\n{report}"
