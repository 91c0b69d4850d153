"""Fresh processes of the suite: ``python -m bench.<probe>`` run from the repository root."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the working directory of probes, first on their PYTHONPATH."""


def bench_env(loop: str = "") -> dict[str, str]:
    """The environment of processes that import ``bench`` by name (``loop``: their
    ``WOOL_LOOP``; none by default)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("WOOL_LOOP", None)
    if loop:
        env["WOOL_LOOP"] = loop
    return env


async def run_probe(
    module: str,
    *args: str,
    timeout: float | None = None,  # noqa: ASYNC109 (past it the probe process is killed)
    loop: str = "",
) -> dict[str, Any]:
    """Run ``python -m module args`` to its end (killed past ``timeout`` seconds); the JSON
    of its last stdout line. ``RuntimeError`` with its last stderr lines if it failed.
    ``loop``: the probe's ``WOOL_LOOP``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=bench_env(loop),
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{module} exited {process.returncode}: {' | '.join(tail)}")
    return json.loads(out.decode().strip().splitlines()[-1])
