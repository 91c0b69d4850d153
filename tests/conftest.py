"""Fixtures shared by every suite: leak checks that run after each test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHM = Path("/dev/shm")

# Every LocalDiscovery file this test run (and the processes it starts) creates goes into
# a folder of its own, so concurrent runs cannot mistake each other's files for leaks.
# Removed when pytest exits, however it ends (a usage error too); what is still in it
# then was leaked, and reported by a test.
LOCAL_DIR = Path(tempfile.mkdtemp(prefix="wooltests-", dir=SHM if SHM.is_dir() else None))
_OWNER = os.getpid()


@atexit.register
def _remove_local_dir() -> None:
    if os.getpid() == _OWNER:  # not in a forked child that inherited the handler
        shutil.rmtree(LOCAL_DIR, ignore_errors=True)


os.environ["WOOL_LOCAL_DIR"] = str(LOCAL_DIR)


def child_pids() -> set[int]:
    """The live child processes of this process."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def wool_files() -> set[str]:
    """Shared-memory segments, lock files and folders of this test run."""
    return {str(p) for p in LOCAL_DIR.iterdir()}


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves worker processes or wool files behind."""
    children, files = child_pids(), wool_files()
    yield
    leaked_children = child_pids() - children
    leaked_files = wool_files() - files
    assert not leaked_children, f"processes left running: {sorted(leaked_children)}"
    assert not leaked_files, f"files left behind: {sorted(leaked_files)}"
