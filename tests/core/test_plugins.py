"""The public plugin API (``wool.plugins``), and plugins keeping to wool's public API."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import wool
import wool.plugins
from tests.core import routines as r
from wool.testing import InProcessPool, drain_events

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCES = [
    ROOT / "wool-discovery-local",
    ROOT / "wool-discovery-lan",
    ROOT / "wool-lb-roundrobin",
    ROOT / "wool-opentelemetry",
    ROOT / "examples",
    ROOT / "tests" / "fixtures",
]


class Collector:
    """Task event types seen, per registration (thread-safe: handlers run on wool's thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[str]] = {}

    def handler(self, label: str):
        def on_event(event: wool.TaskEvent, timestamp: int, context=None) -> None:
            with self.lock:
                self.seen.setdefault(label, []).append(event.type)

        return on_event


async def test_handlers_made_by_one_factory_all_receive_their_events():
    collector = Collector()
    first, second = collector.handler("first"), collector.handler("second")
    assert first.__qualname__ == second.__qualname__
    wool.plugins.task_event_handler("task-created")(first)
    wool.TaskEvent.handler("task-created")(second)
    try:
        async with InProcessPool(1):
            assert await r.add(1, 2) == 3
        assert drain_events()
    finally:
        assert wool.plugins.remove_task_event_handler(first)
        assert wool.TaskEvent.remove_handler(second)
    assert collector.seen == {"first": ["task-created"], "second": ["task-created"]}


async def test_one_function_registered_for_two_event_types_receives_both():
    collector = Collector()
    handler = collector.handler("one")
    wool.TaskEvent.handler("task-created")(handler)
    wool.TaskEvent.handler("task-completed")(handler)
    try:
        async with InProcessPool(1):
            assert await r.add(1, 2) == 3
        assert drain_events()
    finally:
        assert wool.TaskEvent.remove_handler(handler)  # both registrations at once
    assert sorted(collector.seen["one"]) == ["task-completed", "task-created"]
    async with InProcessPool(1):
        assert await r.add(1, 2) == 3
    assert drain_events()
    assert len(collector.seen["one"]) == 2, "a removed handler received more events"


class Outcomes:
    """An in-process hook object counting the tasks that completed here."""

    def __init__(self) -> None:
        self.completed: list[str] = []

    @wool.plugins.hookimpl
    def wool_task_event(self, event: wool.TaskEvent) -> None:
        if event.type == "task-completed":
            self.completed.append(event.routine)


async def test_a_registered_plugin_object_sees_events_until_unregistered():
    first, second = Outcomes(), Outcomes()  # two objects of one class: two registrations
    names = {wool.plugins.register(first), wool.plugins.register(second)}
    assert len(names) == 2
    try:
        async with InProcessPool(1):
            assert await r.add(2, 2) == 4
            assert drain_events()
            assert wool.plugins.unregister(second)
            assert await r.add(3, 3) == 6
        assert drain_events()
    finally:
        wool.plugins.unregister(first)
    assert first.completed == ["add", "add"]
    assert second.completed == ["add"]
    assert not wool.plugins.unregister(second)


def test_registering_one_object_twice_or_a_taken_name_is_refused():
    plugin = Outcomes()
    name = wool.plugins.register(plugin)
    try:
        with pytest.raises(ValueError, match="already registered as wool plugin"):
            wool.plugins.register(plugin)
        with pytest.raises(ValueError, match=f"a wool plugin named {name!r} is already"):
            wool.plugins.register(Outcomes(), name=name)
    finally:
        assert wool.plugins.unregister(plugin)


def test_plugins_are_found_by_group_and_name():
    from wool_lb_roundrobin import RoundRobinLoadBalancer

    assert {"roundrobin", "fixture-random"} <= set(
        wool.plugins.installed(wool.plugins.LOADBALANCER_GROUP)
    )
    assert "local" in wool.plugins.installed(wool.plugins.DISCOVERY_GROUP)
    assert "fixture-hooks" in wool.plugins.installed(wool.plugins.PLUGIN_GROUP)
    assert wool.plugins.load(wool.plugins.LOADBALANCER_GROUP, "roundrobin") is (
        RoundRobinLoadBalancer
    )
    with pytest.raises(wool.plugins.PluginNotFound, match=r"named 'nope' \(installed: .*'local'"):
        wool.plugins.load(wool.plugins.DISCOVERY_GROUP, "nope")


def private_imports(path: Path) -> list[str]:
    """Every use of a ``wool._`` module in a Python file, as ``line: text``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "wool" and len(parts) > 1 and parts[1].startswith("_"):
                if not parts[1].startswith("__"):
                    found.append(f"{node.lineno}: {name}")
    return found


def test_plugin_distributions_examples_and_fixtures_use_only_the_public_api():
    files = [p for root in PLUGIN_SOURCES for p in root.rglob("*.py") if ".venv" not in p.parts]
    assert len(files) > 20, "the scan found too few files to mean anything"
    offenders = {str(p.relative_to(ROOT)): uses for p in files if (uses := private_imports(p))}
    assert offenders == {}


def test_the_scan_catches_every_form_of_private_import(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import wool._hooks\n"
        "from wool._task import current_proxy\n"
        "from wool import _events\n"
        "import wool\n"
        "wool._caller_proxy.CallerProxy\n"
        "wool.__version__\n"
        "from wool.testing import InProcessPool\n"
    )
    assert private_imports(sample) == [
        "1: wool._hooks",
        "2: wool._task",
        "2: wool._task.current_proxy",
        "3: wool._events",
        "5: wool._caller_proxy",
    ]


def test_import_wool_gives_the_plugin_api_but_not_the_kit_nor_pytest():
    code = (
        "import sys, wool\n"
        "print(callable(wool.plugins.register),"
        " sorted(m for m in ('wool.testing', 'pytest') if m in sys.modules))\n"
        "import wool.testing\n"
        "print('pytest' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split("\n")[:2] == ["True []", "False"]
