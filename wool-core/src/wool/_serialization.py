"""Pickling of routines, arguments, results and exceptions, with errors that name the culprit."""

from __future__ import annotations

import inspect
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle
from tblib import pickling_support

from wool._errors import RemoteTaskError, TaskException

PROTOCOL = pickle.HIGHEST_PROTOCOL


def dumps(obj: object) -> bytes:
    """Pickle ``obj``: with the standard (C) pickler when that is safe, else cloudpickle.

    The standard pickler refers to functions and classes by name; a name in
    ``__main__`` would not resolve in another process, so such pickles, and anything the
    standard pickler refuses (lambdas, local classes), go through cloudpickle, which
    pickles them by value.
    """
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL)
    except Exception:
        return cloudpickle.dumps(obj, protocol=PROTOCOL)
    if b"__main__" in data:
        return cloudpickle.dumps(obj, protocol=PROTOCOL)
    return data


_by_reference: dict[Callable[..., Any], bytes] = {}


def dumps_routine(routine: Callable[..., Any]) -> bytes:
    """Pickle a routine; routines pickled by reference are pickled once per process.

    A function that the standard pickle accepts is importable by name, so its pickle
    never changes; one that needs cloudpickle (a closure, a ``__main__`` function) is
    pickled by value on every call, so that it carries its current globals.
    """
    data = _by_reference.get(routine)
    if data is None:
        if getattr(routine, "__module__", "__main__") == "__main__":
            return dumps(routine)
        try:
            data = pickle.dumps(routine, protocol=PROTOCOL)
        except Exception:
            return dumps(routine)
        _by_reference[routine] = data
    return data


def loads(data: bytes) -> Any:
    """Unpickle what :func:`dumps` produced."""
    return pickle.loads(data)


def encode_arguments(
    routine: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bytes:
    """Pickle a call's arguments; raise ``TypeError`` naming the argument that cannot be."""
    try:
        return dumps((args, kwargs))
    except Exception as exc:
        name = unpicklable_argument(function, args, kwargs)
        raise TypeError(f"argument {name} of routine {routine}() cannot be pickled: {exc}") from exc


def unpicklable_argument(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """The name (or position) of the first argument that cannot be pickled."""
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {**{f"#{i}": a for i, a in enumerate(args)}, **kwargs}
    for name, value in bound.items():
        try:
            dumps(value)
        except Exception:
            return repr(name)
    return "(unknown)"


def encode_exception(exc: BaseException, *, routine: str, worker: str) -> bytes:
    """Pickle an exception raised by a routine, with its traceback and chain.

    An exception that cannot be pickled becomes a :class:`RemoteTaskError` that carries
    its type, message and traceback as text.
    """
    pickling_support.install(exc)
    try:
        data = dumps(exc)
        loads(data)
        return data
    except Exception as problem:
        record = describe_exception(exc, worker=worker)
        substitute = RemoteTaskError(
            f"routine {routine}() raised {record.type}: {record.message} "
            f"(the exception could not be pickled: {problem})\n{record.traceback}",
            record,
        )
        return dumps(substitute)


def describe_exception(exc: BaseException, *, worker: str = "") -> TaskException:
    """The :class:`TaskException` record of ``exc``."""
    kind = type(exc)
    return TaskException(
        type=f"{kind.__module__}.{kind.__qualname__}",
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        worker=worker,
    )


def decode_exception(data: bytes, *, routine: str, worker: str) -> BaseException:
    """Unpickle an exception sent by a worker and attach its :class:`TaskException`."""
    try:
        exc = loads(data)
    except Exception as problem:
        record = TaskException("(unknown)", str(problem), "", worker)
        return RemoteTaskError(
            f"routine {routine}() raised an exception that cannot be unpickled here: {problem}",
            record,
        )
    if not isinstance(exc, BaseException):
        return RemoteTaskError(
            f"worker sent a non-exception as the error of {routine}()",
            TaskException(type(exc).__qualname__, repr(exc), "", worker),
        )
    record = describe_exception(exc, worker=worker)
    try:
        exc.__wool_task_exception__ = record  # type: ignore[attr-defined]
        exc.add_note(f"(raised by wool routine {routine}() on worker {worker})")
    except (AttributeError, TypeError):
        pass
    return exc
