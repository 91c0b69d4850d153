"""The committed wire modules match what protos/ generates."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "protos" / "generate.py"


def _load_generate():
    spec = importlib.util.spec_from_file_location("wool_protos_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("proto", ["wool/v1/worker.proto", "wool_discovery_etcd/v3/etcd.proto"])
def test_committed_protos_are_up_to_date(tmp_path: Path, proto: str) -> None:
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (nox -s tests installs it)")
    generate = _load_generate()
    source = Path(proto)
    generated = generate.generate(tmp_path, source)
    stem = f"{source.stem}_pb2"
    assert sorted(p.name for p in generated) == [f"{stem}.py", f"{stem}.pyi"]
    for path in generated:
        committed = generate.TARGETS[source] / path.name
        assert committed.is_file(), f"{committed} is missing: run `nox -s protos`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed.relative_to(ROOT)} is stale (or was generated with another "
            f"grpcio-tools than {version('grpcio-tools')}): run `nox -s protos`"
        )
