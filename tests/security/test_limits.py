"""Message size limits: ``WOOL_MAX_MESSAGE_BYTES`` reaches callers and workers, and an
oversized argument, result, item or frame gets a clear error while the pool keeps working.

The caller runs as a process of its own (``tests/security/limits_caller.py``) so that the
limit, read when wool is imported, is set from the environment exactly as a user sets it;
the workers its pool spawns inherit that environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from tests.conftest import wool_files
from tests.security import routines as r
from tests.security.helpers import BOUND, caller, published, worker_process
from tests.security.test_garbage import exchange

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 256 * 1024
CALLER_SECONDS = 180.0


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the caller process once with a 256 KiB limit; its JSON report of every step."""
    env = {
        **os.environ,
        "WOOL_MAX_MESSAGE_BYTES": str(LIMIT),
        "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
    }
    before = wool_files()
    done = subprocess.run(
        [sys.executable, "-m", "tests.security.limits_caller"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        timeout=CALLER_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"limits caller exited with {done.returncode}"
    assert wool_files() == before, "the limits caller left wool files behind"
    return json.loads(done.stdout)


def test_limit_reaches_the_caller_and_its_workers(report):
    assert report["caller_limit"] == LIMIT
    assert report["worker_limit"] == {"ok": LIMIT}
    assert report["under_limit"] == {"ok": 150_000}


def test_oversized_argument_is_refused_before_sending(report):
    step = report["big_argument"]
    assert step["error"] == "ValueError"
    assert "nbytes()" in step["message"]
    assert f"message size limit of {LIMIT} bytes" in step["message"]
    assert "WOOL_MAX_MESSAGE_BYTES" in step["message"]
    assert report["after_big_argument"] == {"ok": 3}


def test_oversized_result_is_a_clear_error(report):
    step = report["big_result"]
    assert step["error"] == "ValueError"
    assert "result of routine blob()" in step["message"]
    assert f"message size limit of {LIMIT} bytes" in step["message"]
    assert report["after_big_result"] == {"ok": 3}


def test_oversized_generator_item_is_a_clear_error(report):
    step = report["big_item"]
    assert step["error"] == "ValueError"
    assert "yielded value of routine blobs()" in step["message"]
    assert report["after_big_item"] == {"ok": 3}


def test_pool_still_works_at_the_end(report):
    assert report["final"] == {"ok": 5}


# Frames under the limit are batched; a batch must never exceed the limit itself.
def test_concurrent_arguments_under_the_limit_all_arrive(report):
    assert report["concurrent_arguments"] == {"ok": [150_000] * 4}


def test_concurrent_results_under_the_limit_all_arrive(report):
    assert report["concurrent_results"] == {"ok": [150_000] * 4}


def test_oversized_sent_value_is_a_clear_error(report):
    step = report["big_sent_value"]
    assert step.get("error") == "ValueError", step
    assert "WOOL_MAX_MESSAGE_BYTES" in step["message"]


async def test_oversized_raw_frame_gets_resource_exhausted(monkeypatch, discovery):
    """A peer that ignores the limit gets a status, not a crash; the worker serves on."""
    monkeypatch.setenv("WOOL_MAX_MESSAGE_BYTES", str(LIMIT))
    async with asyncio.timeout(BOUND), worker_process() as worker:
        monkeypatch.delenv("WOOL_MAX_MESSAGE_BYTES")
        huge = b"\x0a" + _varint(LIMIT) + bytes(LIMIT)  # a single frame of LIMIT bytes
        outcome = await exchange(worker.address, huge)
        assert outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in outcome.details
        async with published(discovery, worker), caller(discovery, None, worker.uid):
            assert await r.add(1, 2) == 3


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
