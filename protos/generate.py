"""Generate the Python modules of the wool wire protocol from ``protos/``.

``generate(out_dir)`` runs ``grpc_tools.protoc`` on ``wool/v1/worker.proto`` and returns
the paths of the generated ``worker_pb2.py`` and ``worker_pb2.pyi``. Run as a script, it
regenerates them and copies them into ``wool-core/src/wool/_wire/`` (what ``nox -s
protos`` does). The staleness test reuses ``generate`` to compare against the committed
files. Needs ``grpcio-tools``.
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


def generate(out_dir: str | Path) -> list[Path]:
    """Compile the worker proto into ``out_dir``; return the generated module paths."""
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
    """Regenerate the modules and copy them into wool-core."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(tmp):
            shutil.copyfile(path, WIRE / path.name)
            print(f"wrote {(WIRE / path.name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
