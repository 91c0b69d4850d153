"""The task record and the context variables that tie routines to pools."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from wool._caller_proxy import CallerProxy


@attrs.define(eq=False)
class Task:
    """One invocation of a routine, as it is dispatched.

    ``callable`` is the decorated routine (the worker runs the function it wraps);
    ``proxy`` is the pool proxy the call went out through (the worker uses it for nested
    dispatch).
    """

    routine: str
    callable: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    proxy: CallerProxy
    generator: bool = False
    tags: frozenset[str] = frozenset()
    parent_id: str = ""
    id: str = attrs.field(factory=lambda: f"{_PREFIX}-{next(_COUNTER)}")
    context: dict[str, Any] = attrs.field(factory=dict[str, Any], repr=False)
    """The caller's ``wool.ContextVar`` values when the call was made."""
    headers: dict[str, str] = attrs.field(factory=dict[str, str], repr=False)
    """What ``wool_call_scope`` plugins carry to the worker (trace context, ...)."""
    message: Any = attrs.field(default=None, repr=False)
    """The encoded wire form, built once however many workers are tried."""


# Task ids: a random prefix per process and a counter: unique, and cheap to make.
_PREFIX = uuid.uuid4().hex[:16]
_COUNTER = itertools.count(1)


current_task: ContextVar[Task | None] = ContextVar("wool_current_task", default=None)
"""The task whose routine is running in this context (set on workers)."""

current_proxy: ContextVar[CallerProxy | None] = ContextVar("wool_current_proxy", default=None)
"""The proxy routines dispatch through: the pool's on a caller, the task's on a worker."""
