"""The caller's side of a task's life: dispatch, drive, finish, and the events of each.

This is the one place where a caller emits task events (``task-created``,
``task-scheduled``, ``task-iteration-initiated``, ``task-iteration-completed``,
``task-completed``). Whatever must happen at those moments on the caller's side (log
forwarding, trace context, context variables) belongs in the methods of
:class:`CallerLifecycle`.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from wool import _caller_gc, _context_vars, _prefetch
from wool._caller_connection import encode_task
from wool._caller_log_reemit import reemit
from wool._event_bus import emit
from wool._scopes import Scopes, end, notify, open_call
from wool._worker_load import parked

if TYPE_CHECKING:
    from wool._caller_connection import RemoteCall
    from wool._metadata import WorkerMetadata
    from wool._task import Task


class CallerLifecycle:
    """One task, as the caller that dispatched it lives it."""

    __slots__ = ("_metadata", "_scopes", "_sent", "_steps", "task", "worker")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.worker = ""
        """The uid of the worker that took the task ("" until one did)."""
        self._steps = 0
        self._sent = task.context  # replaced, never changed in place
        self._scopes: Scopes | None = None
        """What the ``wool_call_scope`` plugins follow the call with (tracing spans...)."""
        self._metadata: WorkerMetadata | None = None

    # -- the moments (each emits its event) --------------------------------------------

    def created(self) -> None:
        """The task exists and is encoded; nothing was sent yet."""
        emit("task-created", self.task)

    def scheduled(self, call: RemoteCall) -> None:
        """A worker accepted the task."""
        self.worker = call.worker.uid
        call.on_log = reemit
        self._metadata = call.worker
        emit("task-scheduled", self.task, worker=self.worker)
        if self._scopes:
            notify(self._scopes, "task-scheduled", self.task, call.worker, worker=self.worker)

    def iteration_initiated(self, kind: str) -> int:
        """A generator step was sent to the worker; returns the step's number (1, 2, ...)."""
        self._steps += 1
        emit("task-iteration-initiated", self.task, worker=self.worker, step=self._steps, kind=kind)
        if self._scopes:
            fields = {"worker": self.worker, "step": self._steps, "kind": kind}
            notify(self._scopes, "task-iteration-initiated", self.task, self._metadata, **fields)
        return self._steps

    def iteration_completed(self, step: int, kind: str, exception: BaseException | None) -> None:
        """A generator step ended here: with an item, the generator's end, or an error."""
        emit(
            "task-iteration-completed",
            self.task,
            worker=self.worker,
            step=step,
            kind=kind,
            exception=_name(exception),
        )
        if self._scopes:
            fields = {
                "worker": self.worker,
                "step": step,
                "kind": kind,
                "exception": _name(exception),
            }
            notify(self._scopes, "task-iteration-completed", self.task, self._metadata, **fields)

    def completed(self, exception: BaseException | None) -> None:
        """The call is over for the caller (``exception``: what it raised, if anything)."""
        fields: dict[str, Any] = {"exception": _name(exception)}
        if self.worker:
            fields["worker"] = self.worker
        emit("task-completed", self.task, **fields)
        if self._scopes:
            end(self._scopes, self.task, exception)

    # -- the choreography -----------------------------------------------------------

    async def dispatch(self) -> RemoteCall:
        """Encode the task and send it to a worker; ``completed`` if none takes it.

        The ``wool_call_scope`` plugins are asked first, in the caller's context, so that
        the headers they add travel in the task.
        """
        task = self.task
        self._scopes = open_call(task)
        if task.message is None:
            try:
                task.message = encode_task(task)
            except BaseException as exc:  # an argument that cannot travel: no task exists
                if self._scopes:
                    end(self._scopes, task, exc)
                raise
        self.created()
        try:
            async with parked():  # on a worker, a nested call never waits for its parent's slot
                call = await self.task.proxy.dispatch(self.task)
        except BaseException as exc:  # no worker took it: the task ends here
            self.completed(exc)
            raise
        self.scheduled(call)
        return call

    async def run(self) -> Any:
        """A coroutine routine's whole call: its result, or its exception."""
        _caller_gc.call_started()
        try:
            async with parked():  # one park for the dispatch and the wait
                call = await self.dispatch()
                try:
                    result = await call.result()
                except BaseException as exc:
                    self.context_returned(call)
                    self.completed(exc)
                    raise
                self.context_returned(call)
        finally:
            _caller_gc.call_ended()
        self.completed(None)
        return result

    def context_returned(self, call: RemoteCall) -> None:
        """Set the ``wool.ContextVar`` values the routine changed, in the awaiting context.

        The caller's code awaits the call in its own context, as a local coroutine would
        run: a call wrapped in ``asyncio.create_task`` sets them in the task's copy.
        """
        data, call.returned_context = call.returned_context, b""
        if not data:
            return
        values = _context_vars.decode(data)
        _context_vars.apply(values)
        self._sent = {**self._sent, **values}

    def _context_to_send(self) -> bytes:
        """The consumer's values that changed since they last went to the generator."""
        if not self._sent and not _context_vars.any_registered():
            return b""
        now = _context_vars.snapshot()
        changed = _context_vars.changes(self._sent, now)
        self._sent = now
        return _context_vars.encode(changed, self.task.routine)

    async def step(self, call: RemoteCall, kind: str, value: Any = None) -> Any:
        """One generator step, between its ``iteration`` events."""
        if call.is_finished:
            raise StopAsyncIteration
        call.send_step(kind, value, self._context_to_send())
        return await self.outcome(call, self.iteration_initiated(kind), kind)

    def request(self, call: RemoteCall, count: int) -> list[int]:
        """Ask for ``count`` ``next`` steps ahead of their outcomes (reading ahead), in one
        message; their numbers."""
        call.send_next_steps(count, self._context_to_send())
        return [self.iteration_initiated("next") for _ in range(count)]

    async def outcome(self, call: RemoteCall, step: int, kind: str) -> Any:
        """The item that step number ``step`` yielded (its ``iteration-completed`` event)."""
        try:
            async with parked():
                try:
                    item = await call.step_outcome(kind)
                finally:
                    self.context_returned(call)
        except StopAsyncIteration as exc:
            # A close step that stops the generator did what it asked; a pull found the end.
            self.iteration_completed(step, kind, None if kind == "close" else exc)
            raise
        except BaseException as exc:
            self.iteration_completed(step, kind, exc)
            raise
        self.iteration_completed(step, kind, None)
        return item

    async def close(self, call: RemoteCall) -> None:
        """End a generator call that has not finished (its ``finally`` runs remotely)."""
        if call.is_finished:
            return
        if call.is_stepping:
            await call.close()  # cancels the step in flight
            return
        try:
            await self.step(call, "close")
        except StopAsyncIteration:
            pass


NewTask = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], "Task"]
"""Makes the task of a call: ``new_task(routine, args, kwargs)``."""


def coroutine_dispatcher(new_task: NewTask) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The function that stands in for a coroutine routine: each call runs on a worker."""

    async def dispatch_coroutine(*args: Any, **kwargs: Any) -> Any:
        return await CallerLifecycle(new_task(dispatch_coroutine, args, kwargs)).run()

    return dispatch_coroutine


def generator_dispatcher(new_task: NewTask) -> Callable[..., AsyncGenerator[Any, Any]]:
    """The async generator function that stands in for a generator routine.

    Each item the consumer pulls, sends or throws becomes one step of the generator
    running on the worker.
    """

    async def dispatch_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        # through the module: this closure is pickled by value for a __main__ routine,
        # and a ContextVar global would have to be pickled with it
        ahead = _prefetch.read_ahead.get()
        lifecycle = CallerLifecycle(new_task(dispatch_generator, args, kwargs))
        call = await lifecycle.dispatch()
        failure: BaseException | None = None
        try:
            if ahead:
                # wool.prefetch: up to ``ahead`` steps asked for and not yet taken, asked
                # for half a read-ahead at a time (one message each way per half).
                call.reading_ahead = True
                steps = collections.deque(lifecycle.request(call, ahead))
                refill = ahead - max(1, ahead // 2)
                while True:
                    try:
                        item = await lifecycle.outcome(call, steps.popleft(), "next")
                    except StopAsyncIteration:
                        return
                    if len(steps) <= refill:
                        steps.extend(lifecycle.request(call, ahead - len(steps)))
                    if (yield item) is not None:
                        raise TypeError("cannot send a value into a wool.prefetch() generator")
            kind, value = "next", None
            while True:
                try:
                    item = await lifecycle.step(call, kind, value)
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
            await lifecycle.close(call)
            lifecycle.completed(None if isinstance(failure, GeneratorExit) else failure)

    return dispatch_generator


def _never(routine: Any, args: Any, kwargs: Any) -> Task:
    raise AssertionError("only the code of this dispatcher is used")


_GENERATOR_CODE = generator_dispatcher(_never).__code__


def is_remote_generator(obj: object) -> bool:
    """Whether ``obj`` is the call of a ``@wool.routine`` async generator function."""
    return getattr(obj, "ag_code", None) is _GENERATOR_CODE


def _name(exc: BaseException | None) -> str | None:
    return None if exc is None else type(exc).__qualname__
