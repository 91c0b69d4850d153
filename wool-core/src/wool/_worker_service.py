"""The worker's side of the wire: runs the tasks that arrive on Session streams."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import pickle
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from wool import _argcache, _context_vars, _frames, _payload, _serialization, _settings
from wool._credentials import WorkerCredentials
from wool._metadata import WorkerMetadata
from wool._routine_slots import SLOTS, WorkerSlots
from wool._task import Task, current_proxy, current_task
from wool._transport import (
    CONCURRENCY_HEADER,
    DRAINED,
    FRAME_OVERHEAD,
    LIMIT_HEADER,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    ROUTINE_SLOTS_HEADER,
    SESSION_HEADER,
    max_message_bytes,
    peer_limit,
)
from wool._wire import worker_pb2 as pb
from wool._worker_lifecycle import WorkerLifecycle
from wool._worker_load import CallSlot, WorkerLoad, current_slot
from wool._worker_log_capture import LogChannel, log_sink_factory
from wool._worker_proxy_cache import ProxyCache
from wool._write_lane import Write, WriteLane

log = logging.getLogger("wool.worker")

_STEP_NAMES = {number: name.lower() for name, number in pb.Step.Kind.items()}

ROUTINE_CACHE_SIZE = 1024
"""Distinct routine pickles a worker keeps unpickled (closures pickled by value vary)."""
SHUTDOWN_SECONDS = 5.0
"""How long a closing session waits for its cancelled tasks to run their ``finally``."""


class WorkerService:
    """Serves ``wool.v1.Worker/Session``: decodes tasks, runs them, streams back outcomes."""

    def __init__(
        self,
        metadata: WorkerMetadata,
        credentials: WorkerCredentials | None = None,
        load: WorkerLoad | None = None,
    ) -> None:
        self.metadata = metadata
        self.credentials = credentials
        """What this worker serves with: the identity of its routines' nested calls."""
        self.load = load or WorkerLoad()
        """The worker's slots (its concurrency limit) and the load it reports."""
        self.stopping = False
        self._proxies = ProxyCache(credentials)
        self._routines: dict[bytes, Any] = {}
        self._sessions: set[ServerSession] = set()
        self.arguments = _argcache.Store()
        """Large arguments kept for the calls that will name them by digest."""

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler to add to a server."""
        return grpc.method_handlers_generic_handler(
            "wool.v1.Worker",
            {
                "Session": grpc.stream_stream_rpc_method_handler(
                    self.session,
                    request_deserializer=_frames.identity,
                    response_serializer=_frames.identity,
                ),
                "Stats": grpc.unary_unary_rpc_method_handler(
                    self.report_stats,
                    request_deserializer=pb.StatsRequest.FromString,
                    response_serializer=pb.LoadReport.SerializeToString,
                ),
            },
        )

    async def report_stats(
        self,
        request: pb.StatsRequest,
        context: grpc.aio.ServicerContext[pb.StatsRequest, pb.LoadReport],
    ) -> pb.LoadReport:
        """The ``Stats`` RPC: this worker's load report, as its batches carry it."""
        return self.load.report(0)

    def begin_stop(self) -> None:
        """Refuse new tasks and end the sessions that have none in flight."""
        self.stopping = True
        for session in self._sessions:
            session.end_if_idle()

    async def close(self) -> None:
        """Stop the proxies that nested dispatch opened on this worker."""
        self.load.close()
        await self._proxies.close()

    async def session(
        self,
        requests: AsyncIterator[bytes | bytearray],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> None:
        """One caller's session: many calls multiplexed on one stream."""
        version = dict(context.invocation_metadata() or ()).get(PROTOCOL_HEADER)
        if version != PROTOCOL_VERSION:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"wool protocol version mismatch: the caller speaks {version or 'none'}, "
                f"worker {self.metadata.uid} speaks {PROTOCOL_VERSION}",
            )
        # The session's clock starts before the caller's (which starts when this answer
        # arrives), so a caller's deadline is never later on this clock than on its own.
        session = ServerSession(self, peer_limit(context.invocation_metadata()), context.write)
        answer = [
            (PROTOCOL_HEADER, PROTOCOL_VERSION),
            (LIMIT_HEADER, str(max_message_bytes())),
            (ROUTINE_SLOTS_HEADER, str(SLOTS)),
        ]
        if self.load.limit is not None:
            answer.append((CONCURRENCY_HEADER, str(self.load.limit)))
        await context.send_initial_metadata(tuple(answer))
        self._sessions.add(session)
        self.load.watch(session)
        reader = asyncio.get_running_loop().create_task(session.read(requests))
        try:
            await session.lane.run(session.batch_taken)
            if session.malformed is not None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, session.malformed)
            if self.stopping:
                context.set_trailing_metadata(((SESSION_HEADER, DRAINED),))
        finally:
            self._sessions.discard(session)
            self.load.unwatch(session)
            reader.cancel()
            await session.shutdown()

    def routine(self, data: bytes) -> Any:
        """A routine sent by a caller, unpickled once per distinct pickle."""
        routine = self._routines.get(data)
        if routine is None:
            routine = _serialization.loads(data)
            if len(self._routines) >= ROUTINE_CACHE_SIZE:
                self._routines.clear()
            self._routines[data] = routine
        return routine

    @property
    def proxies(self) -> ProxyCache:
        """The caller proxies this worker keeps for nested calls."""
        return self._proxies


class ServerSession:
    def __init__(self, service: WorkerService, limit: int, write: Write) -> None:
        self.service = service
        self.limit = limit
        """The largest message both this worker and the caller accept."""
        self.outbox: asyncio.Queue[_frames.Frame | None] = asyncio.Queue()
        self.routines = WorkerSlots(service.routine)
        """The routines this session's caller sent, by the slot it numbered them with."""
        self.lane = WriteLane(self.outbox, limit, write, self.trailer)
        """Writes the outbox; a generator's items go at once when it is idle."""
        self.logs = LogChannel(self.outbox)
        self.calls: dict[int, _Call] = {}
        self._reading = True
        self.malformed: str | None = None
        self.epoch = asyncio.get_running_loop().time()
        self._flush_waiters: list[asyncio.Future[None]] = []
        self.seen_call = 0
        """The highest call number read on this session (callers count their unreported calls)."""
        self.told_full = False
        self.last_running = 0
        self.last_lag = 0.0
        self._report_pending = False
        self._report: tuple[tuple[int, float, int], bytes] = ((-1, -1.0, -1), b"")
        """The last load report written, encoded, and the figures it gave."""

    def elapsed_ms(self) -> float:
        """Milliseconds since this worker answered the session (the callers' deadlines'
        clock)."""
        return (asyncio.get_running_loop().time() - self.epoch) * 1000

    async def flushed(self) -> bool:
        """Wait until every frame queued so far was handed to gRPC's core, which sends
        it from its own threads; False if the stream broke instead."""
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(waiter)
        await waiter
        return self.lane.failed is None

    def batch_taken(self) -> Callable[[], None]:
        """A batch was taken from the outbox and is handed to gRPC now: the frames
        waited for go on (they run after this step, which hands it over); returns what
        to do once it is written."""
        # A frame queued before a batch is taken from the queue is in it (or in an
        # earlier one), except a frame too big to join it, rare for the small frames
        # that are waited for.
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return self.logs.written

    def push_report(self) -> None:
        """Send the load report on a batch of its own unless one is on its way."""
        if not self._report_pending:
            self._report_pending = True
            self.outbox.put_nowait(b"")

    def trailer(self) -> bytes:
        """The load report appended to each batch this session writes."""
        load = self.service.load
        self._report_pending = False
        self.last_running = load.running
        self.last_lag = load.lag
        self.told_full = load.limit is not None and load.running >= load.limit
        figures = (load.running, load.lag, self.seen_call)
        if figures != self._report[0]:  # unchanged between a generator's steps: reused
            self._report = (figures, _frames.load_field(load.report(self.seen_call)))
        return self._report[1]

    def send(self, response: pb.Response) -> None:
        self.outbox.put_nowait(_frames.message_frame(response))

    def send_pieces(self, pieces: _frames.Pieces | _frames.Buffered) -> None:
        self.outbox.put_nowait(pieces)

    def send_item(self, frame: _frames.Pieces | _frames.Buffered) -> None:
        """A generator's item: written at once if nothing waits to be written."""
        if isinstance(frame, _frames.Buffered):
            self.outbox.put_nowait(frame)  # its buffers follow it, from the writer task
        else:
            self.lane.send_now(frame)

    def finished(self, call_id: int) -> None:
        self.calls.pop(call_id, None)
        if not self.calls and (not self._reading or self.service.stopping):
            self.outbox.put_nowait(None)

    def end_if_idle(self) -> None:
        if not self.calls:
            self.outbox.put_nowait(None)

    async def read(self, requests: AsyncIterator[bytes | bytearray]) -> None:
        try:
            messages = aiter(requests)
            async for message in messages:
                # A large message read from a session socket is a bytearray: upb reads it.
                batch = pb.Requests.FromString(message)  # pyright: ignore[reportArgumentType]
                for request in batch.frames:
                    # A frame with buffers is the last of its batch; they follow it.
                    if request.start.buffers:
                        sent = [b for b in request.start.buffers if not b.cached]
                        self._handle(request, [await anext(messages) for _ in sent])
                    else:
                        self._handle(request)
        except asyncio.CancelledError:
            raise
        except DecodeError as exc:
            # Not a wool caller, or a broken one: end the session with a clear status.
            self.malformed = f"malformed frame: not a wool.v1.Requests message ({exc})"
            log.warning("worker %s: %s", self.service.metadata.uid, self.malformed)
            self.outbox.put_nowait(None)
            return
        except Exception as exc:
            log.debug("session read ended: %r", exc)
        self._reading = False
        if not self.calls:
            self.outbox.put_nowait(None)

    def _handle(self, request: pb.Request, buffers: list[bytes | bytearray] | None = None) -> None:
        frame = request.WhichOneof("frame")
        if frame == "start":
            self.seen_call = max(self.seen_call, request.call)
            # Resolved in the order calls arrive: a later call may reuse the slot.
            start = request.start
            routine = self.routines.resolve(start.routine_slot, start.callable)
            if self.service.stopping:
                reason = f"worker {self.service.metadata.uid} is stopping"
                rejected = pb.Rejected(reason=reason, transient=True)
                self.send(pb.Response(call=request.call, rejected=rejected))
            elif request.call not in self.calls:
                specs = request.start.buffers
                buffers, missing = self.service.arguments.resolve(specs, buffers or [])
                if missing:
                    self.send(pb.Response(call=request.call, missing=missing))
                    return
                call = _Call.start(
                    self, request.call, start, buffers, request.accept_by, routine, request.standby
                )
                self.calls[request.call] = call
            return
        call = self.calls.get(request.call)
        if call is None:
            return
        if request.confirmed:
            call.confirm()
        elif frame is None and request.accept_by:
            call.accept_by = max(call.accept_by, request.accept_by)  # the caller waits longer
        elif frame == "step":
            call.step(request.step, request.context)
        elif frame == "cancel":
            call.cancel()

    async def shutdown(self) -> None:
        calls = list(self.calls.values())
        for call in calls:
            call.cancel()
        if calls:
            waiters = [asyncio.ensure_future(call.done()) for call in calls]
            _, pending = await asyncio.wait(waiters, timeout=SHUTDOWN_SECONDS)
            for waiter in pending:
                waiter.cancel()


class _Call:
    """One task on this worker: a coroutine run, or a generator advanced step by step."""

    def __init__(
        self,
        session: ServerSession,
        call_id: int,
        message: pb.Task,
        buffers: list[bytes | bytearray],
        accept_by: int = 0,
        routine: Callable[[], Any] | None = None,
        standby: bool = False,
    ) -> None:
        self.session = session
        self.standby = standby
        """Whether the caller found every worker full: it may wait here for a slot."""
        self.routine_of = routine or session.routines.resolve(0, message.callable)
        """Gives the routine to run (or raises why it cannot be had)."""
        self.id = call_id
        self.message = message
        self.buffers = buffers
        self.accept_by = accept_by
        """The caller's deadline to start this call (ms of the session; 0: none)."""
        self.confirmed: asyncio.Future[None] | None = None
        self.steps: collections.deque[tuple[pb.Step, bytes]] = collections.deque()
        """Generator steps asked for and not begun yet, in order (a caller reading ahead
        asks for several; they also wait here until the generator exists)."""
        self.routine = message.routine
        self.context = contextvars.Context()
        self.lifecycle: WorkerLifecycle | None = None
        self.slot: CallSlot | None = None
        self.generator: Any = None
        self.running: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.closed = asyncio.Event()
        self.proxy_key: bytes | None = None

    @classmethod
    def start(
        cls,
        session: ServerSession,
        call_id: int,
        message: pb.Task,
        buffers: list[bytes | bytearray],
        accept_by: int,
        routine: Callable[[], Any] | None = None,
        standby: bool = False,
    ) -> _Call:
        call = cls(session, call_id, message, buffers, accept_by, routine, standby)
        call.running = call._spawn(call._begin())
        return call

    def _late(self) -> bool:
        """Whether the caller may give up on this call before our answer reaches it."""
        margin_ms = _settings.current().accept_margin * 1000
        return bool(self.accept_by) and self.session.elapsed_ms() > self.accept_by - margin_ms

    def confirm(self) -> None:
        if self.confirmed is not None and not self.confirmed.done():
            self.confirmed.set_result(None)

    async def _until_caller_still_waits(self) -> None:
        """Wait until the queued ``accepted`` is handed to gRPC; if that was late, ask the
        caller whether it still waits: it answers ``confirmed``, or has sent ``cancel``
        (which cancels this task while it waits here)."""
        if not await self.session.flushed():
            raise asyncio.CancelledError  # the stream broke: the caller never saw "accepted"
        if self._late():
            self.confirmed = asyncio.get_running_loop().create_future()
            self.session.send(pb.Response(call=self.id, confirm=True))
            await self.confirmed

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine, context=self.context)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        # A task cancelled before it ran its first line never reports; report for it.
        if task.cancelled() and not self.closed.is_set():
            if self.generator is not None:
                self.running = self._spawn(self._cancel_idle_generator())
            else:
                self.finish(_cancelled(), asyncio.CancelledError())

    def send(self, response: pb.Response | _frames.Pieces | _frames.Buffered) -> None:
        if isinstance(response, (list, _frames.Buffered)):
            self.session.send_pieces(response)
        else:
            response.call = self.id
            self.session.send(response)

    def finish(
        self,
        response: pb.Response | _frames.Pieces | _frames.Buffered | None,
        ended_by: BaseException | None = None,
    ) -> None:
        """End the call with its last ``response``; ``ended_by`` is the exception that
        ended the routine, if one did (the ``task-stopped`` event names its type)."""
        if self.closed.is_set():
            return
        if self.slot is not None:
            self.slot.end()
        if self.lifecycle is not None:
            self.lifecycle.stopped(ended_by)
        if self.proxy_key is not None:
            self.service.proxies.release(self.proxy_key)
            self.proxy_key = None
        if isinstance(response, pb.Response) and self.lifecycle is not None:
            try:
                response.context = self.lifecycle.context_to_return(self.context)
            except TypeError as exc:
                log.warning("worker %s: %s", self.service.metadata.uid, exc)
        if response is not None:
            self.send(response)
        self.closed.set()
        self.session.finished(self.id)

    async def done(self) -> None:
        await self.closed.wait()

    async def _begin(self) -> None:
        message = self.message
        worker = self.service.metadata
        load = self.service.load
        if not load.try_admit():
            self.session.told_full = True
            if not (self.standby and load.may_stand_by()):
                reason = (
                    f"worker {worker.uid} is full ({load.limit} calls running, its concurrency)"
                )
                rejected = pb.Rejected(reason=reason, transient=True, full=True)
                self.finish(pb.Response(rejected=rejected))
                return
            try:
                await load.stand_by()  # the deadline check below still applies
            except asyncio.CancelledError:
                self.finish(_cancelled(), asyncio.CancelledError())  # never started
                return
            if self.service.stopping:  # it began to stop meanwhile: another worker starts it
                load.release()
                reason = f"worker {worker.uid} is stopping"
                self.finish(pb.Response(rejected=pb.Rejected(reason=reason, transient=True)))
                return
        self.slot = slot = CallSlot(load, held=True)
        current_slot.set(slot)
        what = "routine"
        try:
            function = self.routine_of()
            what = "arguments"
            writable = [buffer.writable for buffer in message.buffers]
            args, kwargs = _payload.loads(message.arguments, self.buffers, writable)
            self.buffers = []
            what = "caller's proxy"
            proxy = self.service.proxies.acquire(message.proxy)
            self.proxy_key = message.proxy
            what = "context variables"
            context = _context_vars.decode(message.context)
        except Exception as exc:
            problem = pickle.UnpicklingError(
                f"the {what} of routine {message.routine}() could not be unpickled on worker "
                f"{worker.uid} ({type(exc).__name__}: {exc}); is what the caller sends "
                "importable there?"
            )
            problem.__cause__ = exc
            self.finish(self._error(problem))
            return
        task = Task(
            routine=message.routine,
            callable=function,
            args=args,
            kwargs=kwargs,
            proxy=proxy,
            generator=message.generator,
            tags=frozenset(message.tags),
            parent_id=message.parent_id,
            id=message.id,
            headers=dict(message.headers),
        )
        session = self.session
        sink = log_sink_factory(session.logs, self.id, proxy.forward_logs)
        self.lifecycle = lifecycle = WorkerLifecycle(
            task, worker, context=context, sink=sink, load=self.service.load
        )
        verdict = lifecycle.admit()
        if verdict is not None:
            self.finish(pb.Response(rejected=pb.Rejected(reason=verdict, transient=True)))
            return
        if self._late():
            # The caller has given up (or will before our answer reaches it): never start.
            reason = f"worker {worker.uid} got to the call after its caller's deadline"
            rejected = pb.Rejected(reason=reason, transient=True)
            self.finish(pb.Response(rejected=rejected, late=True))
            return
        current_task.set(task)
        current_proxy.set(proxy)
        accepted = pb.Response(call=self.id, accepted=pb.Accepted(worker=worker.uid))
        if not self.accept_by:
            session.send(accepted)  # the caller waits as long as it takes: no hurry
        else:
            handed = session.lane.send_now(_frames.message_frame(accepted))
            try:
                if not handed:  # written after the frames ahead of it: start once it is
                    await self._until_caller_still_waits()
                elif session.lane.failed is not None:
                    raise asyncio.CancelledError  # the stream broke: "accepted" never left
            except asyncio.CancelledError:
                self.finish(_cancelled(), asyncio.CancelledError())  # never started
                return
        lifecycle.started()
        target = getattr(function, "__wool_function__", function)
        if message.generator:
            try:
                self.generator = target(*args, **kwargs)
            except BaseException as exc:  # e.g. arguments that do not bind
                self.finish(self._error(exc), exc)
                return
            self.running = None
            slot.drop()  # an idle generator holds no slot between steps
            if self.steps:
                self.running = self._spawn(self._advance())
            return
        try:
            result = await target(*args, **kwargs)
        except asyncio.CancelledError as exc:
            self.finish(_cancelled(), exc)
            return
        except BaseException as exc:
            self.finish(self._error(exc), exc)
            return
        self.finish(self._value(result, "result"))

    @property
    def service(self) -> WorkerService:
        return self.session.service

    def step(self, step: pb.Step, context: bytes = b"") -> None:
        if self.closed.is_set() or not self.message.generator:
            return
        self.steps.append((step, context))
        # Before the generator exists (see _begin), or while a step runs, it waits its turn.
        if self.generator is not None and self.running is None:
            self.running = self._spawn(self._advance())

    async def _advance(self) -> None:
        """Run the steps asked for, in order, until none is left or the call ended."""
        while self.steps and not self.closed.is_set():
            self.running = asyncio.current_task()
            step, context = self.steps.popleft()
            await self._one_step(step, context)

    async def _one_step(self, step: pb.Step, context: bytes) -> None:
        assert self.lifecycle is not None and self.slot is not None
        if context:
            try:
                self.lifecycle.context_arrived(context)
            except Exception as exc:
                self.finish(self._error(exc), exc)
                return
        self.lifecycle.iteration_started(_STEP_NAMES.get(step.kind, f"unknown-{step.kind}"))
        try:
            await self.slot.hold()
            if step.kind == pb.Step.NEXT:
                item = await self.generator.__anext__()
            elif step.kind == pb.Step.SEND:
                item = await self.generator.asend(_serialization.loads(step.value))
            elif step.kind == pb.Step.THROW:
                item = await self.generator.athrow(_serialization.loads(step.value))
            elif step.kind != pb.Step.CLOSE:
                await self._close_generator()
                raise ValueError(f"malformed frame: unknown generator step kind {step.kind}")
            else:
                await self.generator.aclose()
                self.finish(_stopped())
                return
        except StopAsyncIteration:
            self.finish(_stopped())
            return
        except asyncio.CancelledError as exc:
            await self._close_generator()
            self.finish(_cancelled(), exc)
            return
        except BaseException as exc:
            self.finish(self._error(exc), exc)
            return
        finally:
            self.running = None
            self.slot.drop()
        self.lifecycle.before_item()
        value = self._value(item, "yielded value")
        if isinstance(value, pb.Response):  # the item cannot travel: the call ends with why
            await self._close_generator()
            self.finish(value)
            return
        self.session.send_item(value)

    def cancel(self) -> None:
        if self.closed.is_set() or self.cancelled:
            return
        self.cancelled = True
        self.steps.clear()  # steps read ahead that have not begun never will
        if self.running is not None:
            self.running.cancel()
        elif self.generator is not None:
            self.running = self._spawn(self._cancel_idle_generator())

    async def _cancel_idle_generator(self) -> None:
        await self._close_generator()
        self.finish(_cancelled(), asyncio.CancelledError())

    async def _close_generator(self) -> None:
        try:
            await self.generator.aclose()
        except BaseException:
            log.debug("generator %s raised while closing", self.routine, exc_info=True)

    def _value(self, value: Any, what: str) -> pb.Response | _frames.Pieces | _frames.Buffered:
        try:
            payload = _payload.dumps(_payload.wrap_result(value))
        except Exception as exc:
            problem = TypeError(
                f"{what} of routine {self.routine}() cannot be pickled "
                f"({type(value).__qualname__}): {exc}"
            )
            return self._error(problem)
        try:
            lifecycle = self.lifecycle
            context = b"" if lifecycle is None else lifecycle.context_to_return(self.context)
        except TypeError as exc:
            return self._error(exc)
        limit = self.session.limit
        size = max([len(payload.data) + len(context), *map(len, payload.buffers)])
        if size > limit - FRAME_OVERHEAD:
            return self._error(
                ValueError(
                    f"{what} of routine {self.routine}() pickles to {size} bytes, over "
                    f"the message size limit of {limit} bytes that this worker and the "
                    "caller share (WOOL_MAX_MESSAGE_BYTES)"
                )
            )
        buffers = [pb.Buffer(writable=w) for w in payload.writable]
        frame = _frames.value_frame(self.id, payload.data, context, buffers)
        return _frames.Buffered(frame, payload.buffers) if payload.buffers else frame

    def _error(self, exc: BaseException) -> pb.Response:
        data = _serialization.encode_exception(
            exc, routine=self.routine, worker=self.service.metadata.uid
        )
        return pb.Response(error=data)


def _cancelled() -> pb.Response:
    return pb.Response(cancelled=pb.Cancelled())


def _stopped() -> pb.Response:
    return pb.Response(stopped=pb.Stopped())
