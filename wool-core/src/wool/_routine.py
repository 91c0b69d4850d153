"""The ``@wool.routine`` decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from wool import _context_vars
from wool._caller_lifecycle import coroutine_dispatcher, generator_dispatcher
from wool._task import Task, current_proxy, current_task

F = TypeVar("F", bound=Callable[..., Any])


def routine(fn: F) -> F:
    """Make an async function or async generator function run on a pool's workers.

    Calling the routine inside ``async with wool.WorkerPool()`` dispatches the call to a
    worker; the result, the yielded items, cancellation and exceptions behave as if the
    function ran locally. Works on plain functions, methods, ``classmethod`` and
    ``staticmethod`` objects.
    """
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(routine(fn.__func__))  # type: ignore[return-value]
    name = getattr(fn, "__qualname__", repr(fn))
    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = generator_dispatcher(functools.partial(_new_task, name, True))
    elif inspect.iscoroutinefunction(fn):
        wrapper = coroutine_dispatcher(functools.partial(_new_task, name, False))
    else:
        kind = "generator function" if inspect.isgeneratorfunction(fn) else type(fn).__name__
        raise TypeError(
            f"@wool.routine needs an async function or async generator function; {name} is a {kind}"
        )
    functools.update_wrapper(wrapper, fn)
    wrapper.__wool_function__ = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _new_task(
    name: str,
    generator: bool,
    routine: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Task:
    """The task of one call of routine ``name`` (encoded when it is dispatched)."""
    proxy = current_proxy.get()
    if proxy is None:
        raise RuntimeError(
            f"wool routine {name}() was called outside a worker pool; "
            "call it inside `async with wool.WorkerPool(...)`"
        )
    parent = current_task.get()
    task = Task(
        routine=name,
        callable=routine,
        args=args,
        kwargs=kwargs,
        proxy=proxy,
        generator=generator,
        tags=proxy.tags,
        parent_id=parent.id if parent is not None else "",
        context=_context_vars.snapshot(),
    )
    return task
