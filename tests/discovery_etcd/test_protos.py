"""The committed etcd message modules match what protos/ generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "protos" / "generate.py"


def test_committed_etcd_messages_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (nox -s tests installs it)")
    spec = importlib.util.spec_from_file_location("wool_protos_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generated = generate.generate(tmp_path, generate.ETCD_PROTO)
    assert sorted(p.name for p in generated) == ["etcd_pb2.py", "etcd_pb2.pyi"]
    for path in generated:
        committed = generate.ETCD_MESSAGES / path.name
        assert committed.is_file(), f"{committed} is missing: run `nox -s protos`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `nox -s protos`"
        )
