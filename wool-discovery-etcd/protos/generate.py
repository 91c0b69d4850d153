"""Generate ``wool_discovery_etcd/_etcdpb/etcd_pb2.py{,i}`` from the etcd API subset.

``generate(out_dir)`` runs ``grpc_tools.protoc`` and returns the generated paths; run as
a script, it copies them into the package. Only messages are generated: the client names
the gRPC methods itself (``_rpc.py``), so the package needs no grpcio-tools at run time
and no minimum grpcio beyond wool-core's. Needs ``grpcio-tools`` (the noxfile's pin).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTOS = Path(__file__).resolve().parent
PROTO = Path("wool_discovery_etcd/v3/etcd.proto")
TARGET = PROTOS.parent / "src" / "wool_discovery_etcd" / "_etcdpb"
GENERATED = ("etcd_pb2.py", "etcd_pb2.pyi")


def generate(out_dir: str | Path) -> list[Path]:
    """Compile the proto into ``out_dir``; return the generated module paths."""
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
            str(PROTOS / PROTO),
        ],
        check=True,
    )
    return [out / PROTO.parent / name for name in GENERATED]


def main() -> None:
    """Regenerate the modules and copy them into the package."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(tmp):
            shutil.copyfile(path, TARGET / path.name)
            print(f"wrote {TARGET / path.name}")


if __name__ == "__main__":
    main()
