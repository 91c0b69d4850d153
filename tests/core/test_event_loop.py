"""``WOOL_LOOP``: callers and workers on uvloop when asked for, a clear error otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    import wool


    @wool.routine
    async def loop_kind():
        return type(asyncio.get_running_loop()).__module__


    async def main():
        async with wool.WorkerPool(size=1):
            worker = await loop_kind()
            results = await asyncio.gather(*(loop_kind() for _ in range(50)))
        caller = type(asyncio.get_running_loop()).__module__
        print(json.dumps({"caller": caller, "worker": worker, "all": sorted(set(results))}))


    asyncio.run(main())
    """
)


def _run(loop: str | None, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WOOL_LOOP"}
    if loop is not None:
        env["WOOL_LOOP"] = loop
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )


def test_wool_loop_uvloop_runs_the_caller_and_its_workers_on_uvloop():
    done = _run("uvloop")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"caller": "uvloop", "worker": "uvloop", "all": ["uvloop"]}


def test_without_wool_loop_the_standard_loop_runs_everywhere():
    done = _run(None)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["caller"].startswith("asyncio") and seen["worker"].startswith("asyncio")


def test_an_unknown_wool_loop_is_a_clear_error():
    done = _run("tokio", "import wool")
    assert done.returncode != 0
    assert "WOOL_LOOP='tokio' is not a known event loop" in done.stderr
    assert "uvloop" in done.stderr
