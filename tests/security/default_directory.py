"""What wool leaves in /dev/shm when it uses its default private directory.

Usage (as root, inside a private mount namespace whose /dev/shm is a new tmpfs, which
tests/security/test_default_directory.py arranges)::

    python -m tests.security.default_directory SCENARIO

Every wool process runs as a child of this one with ``WOOL_LOCAL_DIR`` unset, bounded in
time. Prints one JSON line: what the scenario saw, and what is left in /dev/shm once
every wool process has exited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SHM = Path("/dev/shm")
STEP_SECONDS = 60.0
"""How long one wool process may take."""
RACE_ROUNDS = 8
"""Processes each of the two racing loops starts, one after the other."""

POOL = """
import asyncio, os, sys, wool
from tests.core.routines import add
async def main():
    async with wool.WorkerPool(size=1):
        assert await add(1, 2) == 3
        print(sorted(os.listdir("/dev/shm")), flush=True)
asyncio.run(main())
"""

TOUCH = """
import os, wool.plugins
directory = wool.plugins.private_directory()
path = directory / f"touch.{os.getpid()}"
os.close(wool.plugins.open_private(path, os.O_RDWR, create=True))
os.unlink(path)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "WOOL_LOCAL_DIR"}


def _run(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
        env=_env(),
        check=False,
    )
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-3000:]}


def pool() -> dict[str, Any]:
    """A default pool makes a call and exits."""
    return {"pool": _run(POOL)}


def cli_worker() -> dict[str, Any]:
    """``wool worker`` (no --host: a unix socket in the default directory) until SIGTERM."""
    argv = [sys.executable, "-m", "wool", "worker", "--size", "1", "--namespace", "leftovers"]
    worker = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    assert worker.stdout is not None
    running: list[str] = []
    try:
        for line in worker.stdout:
            if line.startswith("worker "):
                running = sorted(os.listdir(SHM))
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=STEP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return {"running": running, "returncode": worker.returncode}


def race() -> dict[str, Any]:
    """Two loops start short-lived wool processes at once (a pool now and then): each
    takes the default directory as the other's last process may be removing it."""
    results: list[list[int]] = [[], []]

    def loop(index: int) -> None:
        for round_ in range(RACE_ROUNDS):
            code = POOL if round_ % 4 == index else TOUCH
            outcome = _run(code)
            results[index].append(outcome["returncode"])
            if outcome["returncode"] != 0:
                sys.stderr.write(outcome["stderr"])

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"returncodes": results}


SCENARIOS = {"pool": pool, "cli-worker": cli_worker, "race": race}


def main(argv: list[str]) -> None:
    (name,) = argv
    outcome = SCENARIOS[name]()
    outcome["left"] = sorted(os.listdir(SHM))
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
