"""examples/plugin-package: a third-party plugin distribution, installed and exercised.

The test sessions install it (``FIXTURE_PLUGINS`` in noxfile.py), so its entry points
are visible here and in every worker process this test starts.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import wool
import wool.testing
from tests.core import routines as r

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "plugin-package"
DISTRIBUTION = "wool-plugin-example"
ENTRY_POINTS = {
    "wool.plugins": {"example-outcomes": "wool_plugin_example:outcomes"},
    "wool.loadbalancer": {"example-affinity": "wool_plugin_example:AffinityLoadBalancer"},
}

example = pytest.importorskip(
    "wool_plugin_example",
    reason="install examples/plugin-package (nox -s tests does) to run these tests",
)


def test_it_declares_its_entry_points():
    declared = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert declared["entry-points"] == ENTRY_POINTS
    assert declared["dependencies"] == ["wool-core"]
    installed = importlib.metadata.distribution(DISTRIBUTION).entry_points
    assert {(ep.group, ep.name, ep.value) for ep in installed} == {
        (group, name, value)
        for group, names in ENTRY_POINTS.items()
        for name, value in names.items()
    }


def test_its_wheel_carries_the_entry_points(tmp_path: Path):
    pytest.importorskip("build", reason="needs the 'build' package (nox -s tests installs it)")
    pytest.importorskip("hatchling", reason="needs hatchling (nox -s tests installs it)")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path, PACKAGE],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "wool_plugin_example/_balancer.py" in names
    for group, entries in ENTRY_POINTS.items():
        assert f"[{group}]" in text
        for name, value in entries.items():
            assert f"{name} = {value}" in text


def test_its_hook_plugin_is_registered_in_this_process():
    import wool.plugins

    with pytest.raises(
        ValueError, match="already registered as wool plugin 'wool.plugins:example-outcomes'"
    ):
        wool.plugins.register(example.outcomes)


class TestAffinityLoadBalancerConformance(wool.testing.LoadBalancerConformance):
    @pytest.fixture
    def loadbalancer_factory(self):
        return example.AffinityLoadBalancer


async def test_its_balancer_is_found_by_name_and_keeps_a_routine_on_one_worker():
    async with wool.WorkerPool(size=3, loadbalancer="example-affinity") as pool:
        assert isinstance(pool.proxy.loadbalancer, example.AffinityLoadBalancer)  # type: ignore[union-attr]
        pids = {await r.pid() for _ in range(6)}
        assert [await r.add(i, i) for i in range(6)] == [0, 2, 4, 6, 8, 10]
        workers = {w.metadata.pid for w in pool.workers if w.metadata is not None}
    assert len(pids) == 1 and pids <= workers


@wool.routine
async def worker_outcomes() -> dict[str, dict[str, int]]:
    """On a worker: the example plugin's counts of task-stopped events there."""
    await asyncio.to_thread(wool.testing.drain_events)
    return example.outcomes.snapshot("worker")


async def test_its_counter_counts_outcomes_in_the_caller_and_in_the_workers():
    example.outcomes.reset()
    async with wool.WorkerPool(size=1):
        assert [await r.add(i, 1) for i in range(3)] == [1, 2, 3]
        for _ in range(2):
            with pytest.raises(ValueError):
                await r.fail_with("value")
        assert [i async for i in r.count_up(2)] == [0, 1]
        on_worker = await worker_outcomes()
    assert wool.testing.drain_events()
    expected = {"add": {"ok": 3}, "fail_with": {"ValueError": 2}, "count_up": {"ok": 1}}
    assert on_worker == expected
    in_caller = example.outcomes.snapshot("caller")
    assert {k: v for k, v in in_caller.items() if k in expected} == expected
    assert in_caller["worker_outcomes"] == {"ok": 1}


@pytest.mark.timeout(300)
def test_its_own_test_suite_passes():
    """What the plugin's author runs: their tests, wool's conformance kit included."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=PACKAGE,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert " passed" in result.stdout
