"""One local attack scenario: a throwaway user against root's wool, on a fresh /dev/shm.

Usage (as root, inside a private mount namespace whose /dev/shm is a new tmpfs, which
tests/security/test_local_attacks.py arranges)::

    python -m tests.security.local_attack SCENARIO UID GID PYTHON SITE_PACKAGES

The intruder's steps (tests/security/intruder_steps.py) run as ``UID:GID`` with the
interpreter ``PYTHON``; root's steps run as child processes of this one, each bounded in
time, with ``WOOL_LOCAL_DIR`` unset so that wool uses its default directory. Prints one
JSON line: what each side observed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

SHM = Path("/dev/shm")
STEPS = Path(__file__).with_name("intruder_steps.py")
PRECIOUS = b"root's precious data\n"
VICTIM_SECONDS = 30.0
"""How long one of root's steps may take: a step still blocked by then was hung by the
attack (the old FIFO hang blocks forever)."""


class Scenario:
    """The two sides of one attack."""

    def __init__(self, uid: int, gid: int, python: str, site_packages: str) -> None:
        self.uid, self.gid = uid, gid
        self.python, self.site_packages = python, site_packages
        self.env = {k: v for k, v in os.environ.items() if k != "WOOL_LOCAL_DIR"}

    def intruder_argv(self, step: str, *args: str) -> list[str]:
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            self.python,
            "-I",
            str(STEPS),
            self.site_packages,
            step,
            *args,
        ]

    def intruder(self, step: str, *args: str) -> dict[str, Any]:
        """Run an intruder step to its end; its JSON report."""
        done = subprocess.run(
            self.intruder_argv(step, *args),
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
        if done.returncode != 0:
            return {"failed": done.returncode, "stderr": done.stderr[-2000:]}
        return json.loads(done.stdout.splitlines()[-1])

    def victim(self, code: str) -> dict[str, Any]:
        """Run one of root's steps (``code``) in a child python, bounded in time."""
        try:
            done = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                timeout=VICTIM_SECONDS,
                env=self.env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"completed": False}
        return {
            "completed": True,
            "returncode": done.returncode,
            "stdout": done.stdout.strip(),
            "stderr": done.stderr[-3000:],
        }

    def victim_process(self, argv: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


PUBLISH = """
import asyncio, os, wool
async def main():
    record = wool.WorkerMetadata("root-worker", "127.0.0.1:1", os.getpid(), "0.16.0")
    async with wool.LocalDiscovery("shared").publisher as publisher:
        await publisher.publish(wool.DiscoveryEvent("worker-added", record))
    print("published")
asyncio.run(main())
"""

SUBSCRIBE = """
import asyncio, contextlib, json, os, wool
async def main():
    discovery = wool.LocalDiscovery("shared")
    marker = wool.WorkerMetadata("root-marker", "127.0.0.1:1", os.getpid(), "0.16.0")
    seen = []
    async with discovery.publisher as publisher:
        await publisher.publish(wool.DiscoveryEvent("worker-added", marker))
        async with contextlib.aclosing(aiter(discovery.subscriber)) as events:
            async with asyncio.timeout(20):
                async for event in events:
                    seen.append(event.metadata.uid)
                    if event.metadata.uid == marker.uid:
                        break
    print(json.dumps(seen))
asyncio.run(main())
"""

ATTACH = """
import asyncio, wool
async def main():
    async with wool.LocalDiscovery("x").publisher:
        pass
    print("attached")
asyncio.run(main())
"""

POOL = """
import asyncio, json, sys, wool
async def main():
    async with wool.WorkerPool(size=1) as pool:
        print(json.dumps(pool.workers[0].metadata.to_dict()), flush=True)
        await asyncio.to_thread(sys.stdin.read)
asyncio.run(main())
"""


def symlink_in_namespace(scenario: Scenario) -> dict[str, Any]:
    """Item 1 as filed: the namespace folder made first by the intruder, in /dev/shm."""
    precious = _precious()
    planted = scenario.intruder("plant-namespace", str(SHM), str(precious))
    victim = scenario.victim(PUBLISH)
    return {"planted": planted, "victim": victim, "precious": precious.read_bytes().decode()}


def symlink_in_private_directory(scenario: Scenario) -> dict[str, Any]:
    """Item 1 against the fix: the intruder makes root's private directory first."""
    precious = _precious()
    folder = SHM / f"wool-{os.geteuid()}"
    planted = scenario.intruder("plant-symlink", str(folder), str(precious))
    victim = scenario.victim(PUBLISH)
    return {"planted": planted, "victim": victim, "precious": precious.read_bytes().decode()}


def takeover(scenario: Scenario) -> dict[str, Any]:
    """Item 2: the intruder publishes first in the namespace root then uses."""
    rogue = subprocess.Popen(
        scenario.intruder_argv("publish-rogue", "shared"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert rogue.stdout is not None and rogue.stdin is not None
        published = rogue.stdout.readline()
        victim = scenario.victim(SUBSCRIBE)
        rogue.stdin.close()
        finished = rogue.stdout.readline()
        rogue.wait(timeout=30)
    finally:
        if rogue.poll() is None:
            rogue.kill()
            rogue.wait()
    return {"published": published, "victim": victim, "rogue": finished}


def fifo(scenario: Scenario) -> dict[str, Any]:
    """Item 3: a FIFO where the sweep of abandoned namespaces looks."""
    planted = scenario.intruder("plant-fifo", str(SHM / "wool-zzz.shm"))
    return {"planted": planted, "victim": scenario.victim(ATTACH)}


def default_pool(scenario: Scenario) -> dict[str, Any]:
    """Item 4: a default pool's worker, dialled by the intruder."""
    return _run_code_in(scenario, scenario.victim_process([sys.executable, "-c", POOL]), "pool")


def cli_worker(scenario: Scenario) -> dict[str, Any]:
    """Item 4: ``wool worker`` without ``--host``, dialled by the intruder."""
    argv = [sys.executable, "-m", "wool", "worker", "--size", "1", "--namespace", "attack"]
    return _run_code_in(scenario, scenario.victim_process(argv), "cli")


def _run_code_in(scenario: Scenario, victim: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    marker = SHM / "pwned"
    try:
        assert victim.stdout is not None and victim.stdin is not None
        worker = _worker_of(victim, kind)
        intruder = scenario.intruder("run-code", json.dumps(worker), str(marker))
    finally:
        if kind == "cli":
            victim.send_signal(signal.SIGTERM)
        elif victim.stdin is not None:
            victim.stdin.close()
        try:
            victim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            victim.kill()
            victim.wait()
    return {"worker": worker, "intruder": intruder, "marker": marker.exists()}


def _worker_of(victim: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    assert victim.stdout is not None
    if kind == "pool":
        return json.loads(victim.stdout.readline())
    for line in victim.stdout:  # "worker UID at ADDRESS (pid PID)"
        words = line.split()
        if words[:1] == ["worker"] and "at" in words:
            pid = int(words[words.index("(pid") + 1].rstrip(")"))
            return {"uid": words[1], "address": words[3], "pid": pid, "version": "0.16.0"}
    raise RuntimeError(f"wool worker printed no worker: {victim.stderr}")


def _precious() -> Path:
    path = SHM / "precious"
    path.write_bytes(PRECIOUS)
    path.chmod(0o644)
    return path


SCENARIOS = {
    "symlink-in-namespace": symlink_in_namespace,
    "symlink-in-private-directory": symlink_in_private_directory,
    "takeover": takeover,
    "fifo": fifo,
    "default-pool": default_pool,
    "cli-worker": cli_worker,
}


def main(argv: list[str]) -> None:
    name, uid, gid, python, site_packages = argv
    scenario = Scenario(int(uid), int(gid), python, site_packages)
    print(json.dumps(SCENARIOS[name](scenario)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
