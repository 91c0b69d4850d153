"""The ``@wool.routine`` decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from wool import _events
from wool._connection import RemoteCall, encode_task
from wool._proxy import WorkerProxy
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
        wrapper: Callable[..., Any] = _generator_routine(fn, name)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine_routine(fn, name)
    else:
        kind = "generator function" if inspect.isgeneratorfunction(fn) else type(fn).__name__
        raise TypeError(
            f"@wool.routine needs an async function or async generator function; {name} is a {kind}"
        )
    functools.update_wrapper(wrapper, fn)
    wrapper.__wool_function__ = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _coroutine_routine(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    async def dispatch_coroutine(*args: Any, **kwargs: Any) -> Any:
        task = _new_task(dispatch_coroutine, name, args, kwargs, generator=False)
        call = await _dispatch(task)
        try:
            result = await call.result()
        except BaseException as exc:
            _events.emit("task-completed", task, worker=call.worker.uid, exception=_name(exc))
            raise
        _events.emit("task-completed", task, worker=call.worker.uid)
        return result

    return dispatch_coroutine


def _generator_routine(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    async def dispatch_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        task = _new_task(dispatch_generator, name, args, kwargs, generator=True)
        call = await _dispatch(task)
        failure: BaseException | None = None
        try:
            kind, value = "next", None
            while True:
                try:
                    item = await call.step(kind, value)
                except StopAsyncIteration:
                    return
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:  # athrow() from the consumer goes to the worker
                    kind, value = "throw", exc
                else:
                    kind, value = ("next", None) if sent is None else ("send", sent)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await call.close()
            exception = None if isinstance(failure, GeneratorExit) else _name(failure)
            _events.emit("task-completed", task, worker=call.worker.uid, exception=exception)

    return dispatch_generator


def _new_task(
    routine: Callable[..., Any],
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    generator: bool,
) -> Task:
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
    )
    task.message = encode_task(task)
    _events.emit("task-created", task)
    return task


async def _dispatch(task: Task) -> RemoteCall:
    proxy: WorkerProxy = task.proxy
    try:
        call = await proxy.dispatch(task)
    except BaseException as exc:  # no worker took it: the task ends here
        _events.emit("task-completed", task, exception=_name(exc))
        raise
    _events.emit("task-scheduled", task, worker=call.worker.uid)
    return call


def _name(exc: BaseException | None) -> str | None:
    return None if exc is None else type(exc).__qualname__
