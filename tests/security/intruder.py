"""A throwaway unprivileged user for the local attack tests: made, used, and removed with
everything it made.

Each attack runs in a private mount namespace whose ``/dev/shm`` is a fresh tmpfs, so
that what the intruder plants there (a FIFO that hangs every wool process of the machine
before the fix, say) never reaches the machine's real ``/dev/shm``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
STEPS = Path(__file__).with_name("intruder_steps.py")
SCENARIO_SECONDS = 240.0
TOOLS = ("useradd", "userdel", "setpriv", "unshare", "mount")


@attrs.frozen
class Intruder:
    """The user ``name`` (``uid``, ``gid``), running ``python`` with wool importable."""

    name: str
    uid: int
    gid: int
    python: str

    def attack(self, scenario: str) -> dict[str, Any]:
        """Run ``scenario`` of tests/security/local_attack.py; what each side observed."""
        mount = 'mount -t tmpfs -o mode=1777,size=64m wool-attack /dev/shm && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mount]
        argv += ["sh", sys.executable, "-m", "tests.security.local_attack", scenario]
        argv += [str(self.uid), str(self.gid), self.python, _site_packages()]
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=SCENARIO_SECONDS, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])


def unavailable() -> str | None:
    """Why the attack tests cannot run here, or ``None``."""
    if os.geteuid() != 0:
        return "needs root, to create a throwaway user and a private mount namespace"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    return None


@contextlib.contextmanager
def throwaway_user() -> Iterator[Intruder]:
    """A new unprivileged user; removed on exit with its processes and files."""
    name = f"woolx{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        uid = int(_id(name, "-u"))
        gid = int(_id(name, "-g"))
        yield Intruder(name, uid, gid, _python_for(uid, gid))
    finally:
        _remove(name)


def _python_for(uid: int, gid: int) -> str:
    """An interpreter of this Python version that the user can run and import wool with."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    candidates.append(os.path.realpath(sys.executable))
    problems: list[str] = []
    for python in candidates:
        if not os.path.exists(python):
            continue
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-I"]
        argv += [str(STEPS), _site_packages(), "probe"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, cwd="/", check=False
        )
        if done.returncode == 0:
            return python
        problems.append(f"{python}: {done.stderr.strip().splitlines()[-1:]}")
    import pytest

    pytest.skip(f"no interpreter the throwaway user can import wool with: {problems}")


def _site_packages() -> str:
    """Root's PYTHONPATH and site directory, for the intruder to import the same wool."""
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([*python_path, sysconfig.get_paths()["purelib"]])


def _id(name: str, flag: str) -> str:
    return subprocess.run(["id", flag, name], check=True, capture_output=True, text=True).stdout


def _remove(name: str) -> None:
    uid = int(_id(name, "-u"))
    for pid in _processes_of(uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
    for top in (Path("/dev/shm"), Path("/tmp")):
        _remove_files_of(uid, top)


def _processes_of(uid: int) -> list[int]:
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
    return pids


def _remove_files_of(uid: int, top: Path) -> None:
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            path = Path(folder) / name
            with contextlib.suppress(OSError):
                if path.lstat().st_uid != uid:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
