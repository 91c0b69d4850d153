"""The committed etcd message modules match what the distribution's proto generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "wool-discovery-etcd" / "protos" / "generate.py"


def test_committed_etcd_messages_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (nox -s tests installs it)")
    spec = importlib.util.spec_from_file_location("wool_etcd_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for path in generate.generate(tmp_path):
        committed = generate.TARGET / path.name
        assert committed.is_file(), f"{committed} is missing: run {GENERATE}"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run {GENERATE}"
