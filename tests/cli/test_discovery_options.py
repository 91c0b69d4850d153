"""Discovery plugins take `--namespace` and add options of their own to the `wool` command.

The plugins here are real entry points: a `.dist-info` folder on the import path declares
them, exactly as an installed distribution would.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from wool import _cli

PLUGIN = '''
import asyncio
import json
import logging

import wool


class _Subscriber:
    def __init__(self, records, namespace):
        self.records, self.namespace = records, namespace

    async def __aiter__(self):
        with open(self.records) as file:
            for record in json.load(file):
                if record.pop("namespace") == self.namespace:
                    yield wool.DiscoveryEvent("worker-added", wool.WorkerMetadata(**record))
        await asyncio.Event().wait()


class _Publisher:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        return None

    async def publish(self, event):
        return None


class RecordsDiscovery:
    """Workers listed in a JSON file, per namespace."""

    def __init__(self, records, namespace="default"):
        self.records, self.namespace = records, namespace

    @classmethod
    def add_cli_options(cls, group):
        group.add_argument("--records-file", metavar="FILE", help="the JSON file of records")

    @classmethod
    def from_cli(cls, namespace, options):
        if not options.records_file:
            raise ValueError("--records-file is required")
        return cls(options.records_file, namespace=namespace)

    @property
    def publisher(self):
        return _Publisher()

    @property
    def subscriber(self):
        return _Subscriber(self.records, self.namespace)


class NamespacedDiscovery(RecordsDiscovery):
    """Takes a namespace through its constructor only (no CLI hooks)."""

    add_cli_options = None
    from_cli = None

    def __init__(self, namespace="default"):
        super().__init__(RECORDS, namespace)


class FlatDiscovery(NamespacedDiscovery):
    """Has no namespaces at all."""

    def __init__(self):
        super().__init__("default")
'''


@pytest.fixture(autouse=True)
def logging_restored():
    """`wool` configures logging in its process; these tests run it in this one."""
    root, wool_logger = logging.getLogger(), logging.getLogger("wool")
    handlers, level = list(root.handlers), wool_logger.level
    yield
    root.handlers[:] = handlers
    wool_logger.setLevel(level)


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the probe plugins as entry points and write their records file."""
    path = tmp_path / "records.json"
    entries = [
        {"namespace": namespace, "uid": f"w-{namespace}", "address": "127.0.0.1:1", "pid": 1}
        for namespace in ("default", "blue")
    ]
    path.write_text(json.dumps([{**entry, "version": "1"} for entry in entries]))
    (tmp_path / "probe_discovery.py").write_text(PLUGIN + f"\nRECORDS = {str(path)!r}\n")
    info = tmp_path / "probe_discovery-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-discovery\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [wool.discovery]
            probe = probe_discovery:RecordsDiscovery
            probe-namespaced = probe_discovery:NamespacedDiscovery
            probe-flat = probe_discovery:FlatDiscovery
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    status = _cli.main(["workers", *argv, "--json", "--wait", "0.3"])
    out = capsys.readouterr().out
    assert status == 0, out
    return [worker["uid"] for worker in json.loads(out)]


def test_plugin_options_and_namespace_reach_the_plugin(records, capsys):
    options = ["--discovery", "probe", "--records-file", str(records)]
    assert listed(capsys, *options) == ["w-default"]
    assert listed(capsys, *options, "--namespace", "blue") == ["w-blue"]


def test_plugin_options_are_listed_in_help(records, capsys):
    with pytest.raises(SystemExit) as exit:
        _cli.main(["worker", "--discovery", "probe", "--help"])
    assert exit.value.code == 0
    help_text = capsys.readouterr().out
    assert "probe discovery:" in help_text
    assert "--records-file FILE" in help_text


def test_plugin_options_are_unknown_to_other_discoveries(records, capsys):
    with pytest.raises(SystemExit) as exit:
        _cli.main(["workers", "--records-file", str(records)])
    assert exit.value.code == 2
    assert "unrecognized arguments: --records-file" in capsys.readouterr().err


def test_plugin_refusal_is_a_usage_error(records, capsys):
    status = _cli.main(["workers", "--discovery", "probe"])
    assert status == 2
    assert "--records-file is required" in capsys.readouterr().err


def test_constructor_namespace_is_used_without_cli_hooks(records, capsys):
    assert listed(capsys, "--discovery", "probe-namespaced") == ["w-default"]
    assert listed(capsys, "--discovery", "probe-namespaced", "--namespace", "blue") == ["w-blue"]


def test_namespace_is_refused_by_a_discovery_without_namespaces(records, capsys):
    assert listed(capsys, "--discovery", "probe-flat") == ["w-default"]
    status = _cli.main(["workers", "--discovery", "probe-flat", "--namespace", "blue"])
    assert status == 2
    assert "the 'probe-flat' discovery has no namespaces" in capsys.readouterr().err
