"""wool.ContextVar values travel to routines and back, as a local coroutine's would."""

from __future__ import annotations

import asyncio
import contextvars
import pickle
import threading

import pytest

import wool
from tests.observe import routines
from tests.observe.routines import request_id, user

pytestmark = pytest.mark.timeout(120)


def test_the_contextvars_api_works_locally():
    var = wool.ContextVar("observe.local", default=1)
    assert var.get() == 1 and var.get(5) == 5 and var.name == "observe.local"
    token = var.set(2)
    assert var.get() == 2
    var.reset(token)
    assert var.get() == 1
    bare = wool.ContextVar("observe.bare")
    with pytest.raises(LookupError):
        bare.get()
    assert contextvars.copy_context().run(lambda: (bare.set(3), bare.get())[1]) == 3
    assert pickle.loads(pickle.dumps(var)).get() == 1, "a variable pickles by name"
    with pytest.raises(TypeError, match="non-empty string name"):
        wool.ContextVar("")


async def test_values_travel_to_the_routine_and_back():
    async with wool.WorkerPool(size=1):
        assert await routines.read_context() == ("unset", "no user")
        request_id.set("r-1")
        user.set({"name": "ada"})
        assert await routines.read_context() == ("r-1", {"name": "ada"})
        assert await routines.set_context("r-2") == "r-1"
        assert request_id.get() == "r-2", "the routine's value is visible after await"
        assert await routines.read_context() == ("r-2", {"name": "ada"})


async def test_nested_calls_see_the_value_and_pass_theirs_back():
    async with wool.WorkerPool(size=2):
        request_id.set("outer")
        assert await routines.read_nested() == ("outer", "no user")
        assert request_id.get() == "set by the nested call"


async def test_a_value_set_before_an_exception_is_visible_as_locally():
    async with wool.WorkerPool(size=1):
        request_id.set("before")
        with pytest.raises(RuntimeError, match="failed after setting"):
            await routines.set_then_fail("set, then failed")
        assert request_id.get() == "set, then failed"


async def test_create_task_keeps_the_routines_value_in_the_tasks_copy():
    async def local(value: str) -> None:
        request_id.set(value)

    async with wool.WorkerPool(size=1):
        request_id.set("mine")
        await asyncio.create_task(routines.set_context("in a task"))
        await asyncio.create_task(local("local in a task"))
        assert request_id.get() == "mine", "as with asyncio, a task works on a copy"
        await local("local awaited")
        assert request_id.get() == "local awaited"
        await routines.set_context("remote awaited")
        assert request_id.get() == "remote awaited", "a routine behaves as the local coroutine"


async def test_an_unpicklable_value_is_a_clear_type_error():
    async with wool.WorkerPool(size=1):
        token = user.set(threading.Lock())
        with pytest.raises(TypeError) as caught:
            await routines.read_context()
        user.reset(token)
        assert str(caught.value).startswith(
            "context variable 'observe.user' of routine read_context() cannot be pickled: "
        )
        same = r"^argument 'value' of routine echo_value\(\) cannot be pickled: "
        with pytest.raises(TypeError, match=same):
            await echo_value(threading.Lock())
        # A value the routine sets that cannot travel back fails the call the same way.
        with pytest.raises(TypeError, match="'observe.user' of routine set_unpicklable"):
            await routines.set_unpicklable()


@wool.routine
async def echo_value(value: object) -> object:
    return value


async def test_a_generator_sees_the_consumers_value_per_step_and_sets_its_own():
    async with wool.WorkerPool(size=1):
        seen = []
        user.set("first")
        async for item in routines.context_per_step(3):
            seen.append((item, request_id.get()))
            user.set(f"after item {item}")
    assert seen == [
        ("first", "generator step 0"),
        ("after item first", "generator step 1"),
        ("after item after item first", "generator step 2"),
    ]
