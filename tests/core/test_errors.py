"""Exceptions keep their type, traceback and chain; bad input gets a clear error."""

from __future__ import annotations

import threading
import traceback

import pytest

import wool
from tests.core import routines as r


async def test_exception_keeps_its_type_and_remote_traceback():
    async with wool.WorkerPool(size=1):
        with pytest.raises(ValueError, match="bad value") as info:
            await r.fail_with("value")
    text = "".join(traceback.format_exception(info.value))
    assert "fail_with" in text and "routines.py" in text
    record = wool.TaskException.of(info.value)
    assert record is not None
    assert record.type == "builtins.ValueError"
    assert "fail_with" in record.traceback
    assert record.worker.startswith("worker-")


async def test_custom_exception_attributes_survive():
    async with wool.WorkerPool(size=1):
        with pytest.raises(r.CustomError) as info:
            await r.fail_with("custom")
    assert info.value.code == 7


async def test_exception_chaining_survives():
    async with wool.WorkerPool(size=1):
        with pytest.raises(RuntimeError, match="outer") as info:
            await r.fail_with("chained")
    cause = info.value.__cause__
    assert isinstance(cause, KeyError)
    assert "_inner_failure" in "".join(traceback.format_tb(cause.__traceback__))


async def test_unpicklable_exception_arrives_as_remote_task_error():
    async with wool.WorkerPool(size=1):
        with pytest.raises(wool.RemoteTaskError, match="RuntimeError: carries a lock") as info:
            await r.fail_with("unpicklable")
        assert info.value.task_exception.type == "builtins.RuntimeError"
        assert await r.add(1, 1) == 2


async def test_unpicklable_argument_names_the_argument_before_dispatch():
    # A durable pool with no workers at all: the error must come before any dispatch.
    from tests.support.directory_discovery import DirectoryDiscovery

    async with wool.WorkerPool(discovery=DirectoryDiscovery("/nonexistent/wool-none")):
        with pytest.raises(TypeError, match=r"argument 'value' of routine echo\(\) cannot be"):
            await r.echo(threading.Lock())


async def test_unpicklable_result_is_a_clear_error_and_the_pool_recovers():
    async with wool.WorkerPool(size=1):
        with pytest.raises(TypeError, match=r"result of routine unpicklable_result\(\)"):
            await r.unpicklable_result()
        assert await r.add(2, 3) == 5


async def test_no_workers_available_when_discovery_finds_none():
    from tests.support.directory_discovery import DirectoryDiscovery

    pool = wool.WorkerPool(
        discovery=DirectoryDiscovery("/nonexistent/wool-none"), wait_for_workers=0.2
    )
    async with pool:
        with pytest.raises(wool.NoWorkersAvailable, match="no worker became available"):
            await r.add(1, 2)
