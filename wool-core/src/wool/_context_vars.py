"""``wool.ContextVar``: context variables whose values travel with routine calls.

A call carries the caller's values of every ``wool.ContextVar`` to the worker; the
values the routine changes come back with its result (and with each item of a
generator), and are set in the context of the code that awaited the call, as a local
coroutine's would be.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast, overload

from wool import _serialization

T = TypeVar("T")
D = TypeVar("D")

_MISSING: Any = object()
_registry: dict[str, contextvars.ContextVar[Any]] = {}
_defaults: dict[str, Any] = {}
_lock = threading.Lock()

Values = dict[str, Any]
"""A snapshot: ``{name: value}`` of the variables that have a value in a context."""


class ContextVar(Generic[T]):
    """A context variable (the ``contextvars.ContextVar`` API) that travels with calls.

    Its value in the caller is visible in the routine and in the calls the routine makes;
    a value the routine sets is visible to the caller once the awaited call returns.
    ``name`` identifies the variable across processes: give each one a unique name
    (``"myapp.request_id"``). Values are pickled.
    """

    __slots__ = ("_var", "name")

    @overload
    def __init__(self, name: str) -> None: ...
    @overload
    def __init__(self, name: str, *, default: T) -> None: ...

    def __init__(self, name: str, *, default: Any = _MISSING) -> None:
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance] (checks the user's argument at run time)
            raise TypeError(f"a wool.ContextVar needs a non-empty string name, got {name!r}")
        self.name = name
        self._var = _variable(name)
        if default is not _MISSING:
            _defaults[name] = default

    def get(self, default: Any = _MISSING) -> T:
        """The value in the current context, else ``default``, else the variable's default.

        Raises ``LookupError`` when there is none of them.
        """
        value = self._var.get(_MISSING)
        if value is not _MISSING:
            return value
        if default is not _MISSING:
            return default
        if self.name in _defaults:
            return _defaults[self.name]
        raise LookupError(self)

    def set(self, value: T) -> contextvars.Token[T]:
        """Set the value in the current context; the token undoes it (:meth:`reset`)."""
        return self._var.set(value)

    def reset(self, token: contextvars.Token[T]) -> None:
        """Restore the value the variable had before the ``set`` that made ``token``."""
        self._var.reset(token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ContextVar, (self.name,))

    def __repr__(self) -> str:
        return f"<wool.ContextVar name={self.name!r}>"


def _variable(name: str) -> contextvars.ContextVar[Any]:
    with _lock:
        var = _registry.get(name)
        if var is None:
            var = _registry[name] = contextvars.ContextVar(f"wool:{name}")
        return var


def any_registered() -> bool:
    """Whether any ``wool.ContextVar`` exists in this process."""
    return bool(_registry)


def snapshot(context: contextvars.Context | None = None) -> Values:
    """The values set in ``context`` (default: the current one)."""
    if not _registry:
        return {}
    if context is None:
        context = contextvars.copy_context()
    values: Values = {}
    for name, var in list(_registry.items()):
        value = context.get(var, _MISSING)
        if value is not _MISSING:
            values[name] = value
    return values


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> Values:
    """The values of ``after`` that are new or not the same object as in ``before``."""
    return {
        name: value
        for name, value in after.items()
        if name not in before or before[name] is not value
    }


def encode(values: Values, routine: str) -> bytes:
    """Pickle a snapshot; ``TypeError`` naming the variable whose value cannot be pickled."""
    if not values:
        return b""
    try:
        return _serialization.dumps(values)
    except Exception as exc:
        for name, value in values.items():
            try:
                _serialization.dumps(value)
            except Exception as inner:
                raise TypeError(
                    f"context variable {name!r} of routine {routine}() cannot be pickled: {inner}"
                ) from inner
        raise TypeError(
            f"the context variables of routine {routine}() cannot be pickled: {exc}"
        ) from exc


def decode(data: bytes) -> Values:
    """The snapshot :func:`encode` pickled (empty bytes: none)."""
    if not data:
        return {}
    values = _serialization.loads(data)
    if not isinstance(values, dict):
        raise TypeError(f"malformed context: a {type(values).__qualname__}, not a dict")
    return cast(Values, values)


def apply(values: Mapping[str, Any]) -> None:
    """Set each value in the current context."""
    for name, value in values.items():
        _variable(name).set(value)
