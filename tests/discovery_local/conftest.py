"""Fixtures for wool-discovery-local: unique namespaces, stand-in worker processes, and
helpers to wait for events and to look inside a namespace's segment."""

from __future__ import annotations

import asyncio
import mmap
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.events import added as added
from tests.support.events import dropped as dropped
from tests.support.events import updated as updated
from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_local import LocalDiscovery
from wool_discovery_local._names import Paths, base_directory
from wool_discovery_local._table import SEGMENT_SIZE, Attacher, Record, Table

CHILD = Path(__file__).with_name("_child.py")
EVENT_TIMEOUT = 10.0


def metadata(uid: str, pid: int | None = None, **fields: object) -> WorkerMetadata:
    """A worker record; its process is this one unless ``pid`` says otherwise."""
    values: dict[str, object] = {
        "uid": uid,
        "address": "127.0.0.1:50051",
        "pid": os.getpid() if pid is None else pid,
        "version": "0.16.0",
    }
    values.update(fields)
    return WorkerMetadata(**values)  # type: ignore[arg-type]


async def next_event(events: AsyncIterator[DiscoveryEvent]) -> DiscoveryEvent:
    """The next event, or a failure after a bounded wait."""
    async with asyncio.timeout(EVENT_TIMEOUT):
        return await anext(events)


def leftovers(namespace: str) -> list[Path]:
    """Everything named after ``namespace`` in /dev/shm and the temp directory."""
    found: list[Path] = []
    for folder in (base_directory(), Path("/dev/shm"), Path(tempfile.gettempdir())):
        if folder.is_dir():
            found += folder.glob(f"wool-{namespace}.*")
    return found


def read_table(namespace: str) -> tuple[list[Attacher], list[Record]]:
    """The attachments and worker records of a namespace, read without the lock."""
    with open(Paths.of(namespace).segment, "r+b") as f, mmap.mmap(f.fileno(), SEGMENT_SIZE) as m:
        table = Table(m)
        return table.attachers(), table.records()


def child_env() -> dict[str, str]:
    """The environment for a child python that imports what this process imports."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test only; it must be gone, files and all, after the test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    assert leftovers(name) == []


@pytest.fixture
def discovery(namespace: str) -> LocalDiscovery:
    return LocalDiscovery(namespace)


@pytest.fixture
def sleeper() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts processes that stand for workers; kills and reaps them after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)
