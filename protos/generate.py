"""Generate the Python modules of the protos in ``protos/``.

``generate(out_dir, proto)`` runs ``grpc_tools.protoc`` on one proto (by default
``wool/v1/worker.proto``, the wool wire protocol) and returns the paths of the generated
``*_pb2.py`` and ``*_pb2.pyi``. Run as a script, it regenerates every proto of
:data:`TARGETS` and copies the modules into their package (what ``nox -s protos`` does):
the wire protocol into ``wool-core/src/wool/_wire/``, and the subset of etcd's API that
wool-discovery-etcd speaks into ``wool-discovery-etcd/src/wool_discovery_etcd/_etcdpb/``.
The staleness tests reuse ``generate`` to compare against the committed files. Needs
``grpcio-tools``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent
PROTO = Path("wool/v1/worker.proto")
WIRE = ROOT / "wool-core" / "src" / "wool" / "_wire"
GENERATED = ("worker_pb2.py", "worker_pb2.pyi")
ETCD_PROTO = Path("wool_discovery_etcd/v3/etcd.proto")
ETCD_MESSAGES = ROOT / "wool-discovery-etcd" / "src" / "wool_discovery_etcd" / "_etcdpb"
TARGETS = {PROTO: WIRE, ETCD_PROTO: ETCD_MESSAGES}
"""Each proto, and the package folder its generated modules are committed in."""


def generate(out_dir: str | Path, proto: Path = PROTO) -> list[Path]:
    """Compile ``proto`` into ``out_dir``; return the generated module paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(PROTOS / proto),
        ],
        check=True,
    )
    return [out / proto.parent / f"{proto.stem}_pb2{suffix}" for suffix in (".py", ".pyi")]


def main() -> None:
    """Regenerate the modules and copy them into their packages."""
    with tempfile.TemporaryDirectory() as tmp:
        for proto, target in TARGETS.items():
            for path in generate(tmp, proto):
                shutil.copyfile(path, target / path.name)
                print(f"wrote {(target / path.name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
