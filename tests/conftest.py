"""Fixtures shared by every suite: leak checks that run after each test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

SHM = Path("/dev/shm")


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
    """Shared-memory segments, lock files and folders named like wool's."""
    found: set[str] = set()
    for folder in (SHM, Path(tempfile.gettempdir())):
        if folder.is_dir():
            found.update(str(p) for p in folder.iterdir() if p.name.startswith("wool"))
    return found


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves worker processes or wool files behind."""
    children, files = child_pids(), wool_files()
    yield
    leaked_children = child_pids() - children
    leaked_files = wool_files() - files
    assert not leaked_children, f"processes left running: {sorted(leaked_children)}"
    assert not leaked_files, f"files left behind: {sorted(leaked_files)}"
