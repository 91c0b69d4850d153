"""Pickling of routines, arguments, results and exceptions, with errors that name the culprit."""

from __future__ import annotations

import inspect
import operator
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
_by_value: dict[Callable[..., Any], tuple[tuple[object, ...], bytes]] = {}
BY_VALUE_CACHE_SIZE = 1024
"""Routines whose by-value pickle a process keeps (a notebook redefines them freely)."""


def dumps_routine(routine: Callable[..., Any]) -> bytes:
    """Pickle a routine once per process, however many times it is called.

    A function that the standard pickle accepts is importable by name, so its pickle
    never changes. One that needs cloudpickle (a closure, a ``__main__`` or notebook
    function) is pickled by value, with the module globals it reads; that pickle is kept
    and reused for as long as the function, its defaults, its closure cells and each
    global it names are the very same objects. So rebinding such a global (``LIMIT = 5``,
    redefining a helper) is seen by the next call, while mutating one in place
    (``CONFIG["x"] = 1``, appending to a list) is not: workers keep the value of the
    call that pickled it.
    """
    data = _by_reference.get(routine)
    if data is not None:
        return data
    if getattr(routine, "__module__", "__main__") != "__main__":
        try:
            data = pickle.dumps(routine, protocol=PROTOCOL)
        except Exception:
            data = None
        if data is not None and b"__main__" not in data:
            _by_reference[routine] = data
            return data
    state = _by_value_state(routine)
    cached = _by_value.get(routine)
    if cached is not None and _same(cached[0], state):
        return cached[1]
    data = dumps(routine)
    if len(_by_value) >= BY_VALUE_CACHE_SIZE:
        _by_value.clear()
    _by_value[routine] = (state, data)
    return data


def _by_value_state(routine: Callable[..., Any]) -> tuple[object, ...]:
    """What a by-value pickle of ``routine`` depends on, as objects compared by identity."""
    function = getattr(routine, "__wool_function__", routine)
    code = getattr(function, "__code__", None)
    if code is None:
        return (function,)
    namespace = getattr(function, "__globals__", {})
    cells: list[object] = []
    for cell in getattr(function, "__closure__", None) or ():
        try:
            cells.append(cell.cell_contents)
        except ValueError:  # an empty cell
            cells.append(_EMPTY)
    globals_read = [namespace.get(name, _EMPTY) for name in _global_names(code)]
    defaults = (function.__defaults__, function.__kwdefaults__)
    return (function, code, *defaults, *cells, *globals_read)


_EMPTY = object()
_names_of_code: dict[Any, tuple[str, ...]] = {}


def _global_names(code: Any) -> tuple[str, ...]:
    """The names ``code`` (and the code nested in it) may read from its module."""
    names = _names_of_code.get(code)
    if names is None:
        found: set[str] = set()
        pending = [code]
        while pending:
            current = pending.pop()
            found.update(current.co_names)
            pending.extend(c for c in current.co_consts if hasattr(c, "co_names"))
        if len(_names_of_code) >= BY_VALUE_CACHE_SIZE:
            _names_of_code.clear()
        names = _names_of_code[code] = tuple(sorted(found))
    return names


def _same(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    return len(old) == len(new) and all(map(operator.is_, old, new))


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
