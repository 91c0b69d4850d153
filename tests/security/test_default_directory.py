"""wool's default private directory (``/dev/shm/wool-<uid>``) does not outlive its users.

Each scenario runs in a private mount namespace with a fresh ``/dev/shm`` (so that other
wool users of this machine, and this test session's own ``WOOL_LOCAL_DIR``, play no
part), with ``WOOL_LOCAL_DIR`` unset, and lists what is left there at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.security.default_directory import RACE_ROUNDS

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_SECONDS = 300.0

pytestmark = pytest.mark.timeout(360)


def _scenario(name: str) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("needs root, for a private mount namespace with its own /dev/shm")
    missing = [tool for tool in ("unshare", "mount") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    mount = 'mount -t tmpfs -o mode=1777,size=64m wool-leftovers /dev/shm && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mount]
    argv += ["sh", sys.executable, "-m", "tests.security.default_directory", name]
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=SCENARIO_SECONDS, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_default_pool_leaves_nothing_in_dev_shm():
    outcome = _scenario("pool")
    pool = outcome["pool"]
    assert pool["returncode"] == 0, pool["stderr"]
    assert json.loads(pool["stdout"].replace("'", '"')) == [f"wool-{os.geteuid()}"]  # used
    assert outcome["left"] == []


def test_wool_worker_leaves_nothing_in_dev_shm_after_sigterm():
    outcome = _scenario("cli-worker")
    assert outcome["running"] == [f"wool-{os.geteuid()}"]
    assert outcome["returncode"] == 0
    assert outcome["left"] == []


def test_processes_taking_the_directory_as_another_removes_it_all_succeed():
    outcome = _scenario("race")
    assert outcome["returncodes"] == [[0] * RACE_ROUNDS, [0] * RACE_ROUNDS]
    assert outcome["left"] == []
