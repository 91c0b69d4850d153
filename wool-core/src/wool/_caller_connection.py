"""The caller's side of the wire: one multiplexed session per worker, one RemoteCall per task."""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc
import grpc.aio

from wool import (
    _argcache,
    _context_vars,
    _frames,
    _payload,
    _routine_slots,
    _serialization,
    _settings,
    _socket_session,
    _unix_socket,
)
from wool._caller_slots import Slots
from wool._errors import DispatchError, TransientDispatchError, WorkerFull, WorkerLost
from wool._handovers import HandOvers
from wool._metadata import UNIX_PREFIX, WorkerMetadata
from wool._routine_slots import CallerSlots
from wool._transport import (
    CHANNEL_OPTIONS,
    DRAINED,
    FRAME_OVERHEAD,
    LIMIT_HEADER,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    SESSION_HEADER,
    SESSION_METHOD,
    TRANSIENT_CODES,
    Headers,
    max_message_bytes,
    peer_concurrency,
    peer_limit,
)
from wool._wire import worker_pb2 as pb
from wool._write_lane import WriteLane

UNIX_AUTHORITY = "localhost"
"""The name TLS checks a worker's certificate for when it listens on a unix socket."""

if TYPE_CHECKING:
    from wool._credentials import WorkerCredentials
    from wool._task import Task

log = logging.getLogger("wool.connection")
_EOF: object = grpc.aio.EOF  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType] (not in the grpc stub)

STEP_KINDS = {
    "next": pb.Step.NEXT,
    "send": pb.Step.SEND,
    "throw": pb.Step.THROW,
    "close": pb.Step.CLOSE,
}


class WorkerUnresponsive(TransientDispatchError):
    """The worker did not accept a call within ``settings.accept_timeout``; it did not start it."""


class CallerConnection:
    """A caller's link to one worker: one multiplexed session, on the worker's session
    socket (a local worker without TLS) or on a gRPC channel."""

    def __init__(
        self,
        metadata: WorkerMetadata,
        credentials: WorkerCredentials | None = None,
        *,
        socket_sessions: bool = True,
    ) -> None:
        self.metadata = metadata
        self._credentials = credentials
        self._socket_sessions = socket_sessions
        """Whether sessions may go on the worker's session socket (a local worker without
        TLS that has one); else, and otherwise, on gRPC."""
        self._channel: grpc.aio.Channel | None = None
        self._session: CallerSession | None = None
        self._closed = False
        self._unanswered = False
        self.report: pb.LoadReport | None = None
        """The worker's latest load report (None until it sent one; a worker with a
        concurrency limit gives that limit when it answers, as a report of no calls)."""
        self.on_report: Callable[[CallerConnection], None] | None = None
        """Called with this connection whenever a load report arrives."""

    @property
    def unreported(self) -> int:
        """Calls this caller sent that the worker's latest report does not count yet."""
        session, report = self._session, self.report
        if session is None or report is None:
            return 0
        return max(0, session.last_call - report.seen_call)

    def _reported(self, report: pb.LoadReport) -> None:
        self.report = report
        if self.on_report is not None:
            self.on_report(self)

    def __repr__(self) -> str:
        return f"<CallerConnection {self.metadata.uid} {self.metadata.address}>"

    async def dispatch(
        self, task: Task, *, patient: bool = False, standby: bool = False
    ) -> RemoteCall:
        """Start ``task`` on this worker and wait until the worker accepts it.

        Raises ``TransientDispatchError`` or ``DispatchError`` when the worker did not
        take the task (it did not run there): ``WorkerUnresponsive`` when it did not
        accept within ``settings.accept_timeout``, unless ``patient`` (then it waits as long as
        it takes). ``standby``: the worker is full and may hold the task until a slot
        frees; ``WorkerFull`` if it does not start it within the accept timeout.
        """
        if self._closed:
            raise TransientDispatchError(f"connection to worker {self._label} is closed")
        if task.message is None:
            task.message = encode_task(task)
        session = self._current_session()
        timeout = _settings.current().accept_timeout
        give_up_at = None if patient else asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(give_up_at):
                await session.answered()
        except TimeoutError:
            # Start afresh next time: a channel stuck on a silent peer may not recover.
            self._unanswered = True
            session.abort()
            raise WorkerUnresponsive(
                f"worker {self._label} did not answer within {timeout:g}s (is its "
                f"event loop blocked?); {task.routine}() goes to another worker",
                worker=self.metadata.uid,
            ) from None
        if session.broken is not None:
            raise session.unsent_failure()
        self._unanswered = False
        size = task.message.size
        if size > session.limit - FRAME_OVERHEAD:
            raise ValueError(
                f"the call of routine {task.routine}() pickles to {size} bytes, over the "
                f"message size limit of {session.limit} bytes of worker "
                f"{self.metadata.uid} at {self.metadata.address} (WOOL_MAX_MESSAGE_BYTES)"
            )
        if not session.unaccepted.try_acquire():
            await self._turn(session, task, patient)
            if not patient:  # the deadline runs from when the start is sent
                give_up_at = asyncio.get_running_loop().time() + timeout
        try:
            call = session.start(task, give_up_at, standby)
            await call.accepted(give_up_at)
        finally:
            session.unaccepted.release()
        return call

    async def _turn(self, session: CallerSession, task: Task, patient: bool) -> None:
        """Wait until fewer than ``UNACCEPTED_PER_SESSION`` calls await the worker's verdict.

        A burst of calls thus reaches the worker in a window it can answer within the
        accept timeout, instead of all at once with deadlines it cannot meet. The calls
        ahead carry the deadlines: when one gives up on a silent worker, every call
        waiting here raises ``WorkerUnresponsive`` at once (unless ``patient``: it waits on).
        """
        while True:
            try:
                await session.unaccepted.acquire()
            except WorkerUnresponsive as exc:
                if patient:
                    continue
                raise WorkerUnresponsive(
                    f"{exc}; {task.routine}() waited behind those calls and goes to another worker",
                    worker=self.metadata.uid,
                ) from None
            if session.broken is not None:
                session.unaccepted.release()
                raise session.unsent_failure()
            return

    @property
    def unresponsive(self) -> bool:
        """Whether the worker left a call unanswered past ``settings.accept_timeout`` and has sent
        nothing since (dispatch tries such a worker last)."""
        session = self._session
        silent = session is not None and session.broken is None and session.silent
        return silent or self._unanswered

    async def close(self, *, drain: float = 0.0) -> None:
        """Close the channel, first giving the calls in flight up to ``drain`` seconds.

        Calls still running then fail with ``WorkerLost``.
        """
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            if drain > 0:
                try:
                    async with asyncio.timeout(drain):
                        await session.drain()
                except TimeoutError:
                    log.warning(
                        "worker %s left with calls in flight; giving up on them after %gs",
                        self._label,
                        drain,
                    )
            session.abort()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    @property
    def _label(self) -> str:
        return f"{self.metadata.uid} at {self.metadata.address}"

    def _current_session(self) -> CallerSession:
        session = self._session
        if session is None or session.broken is not None:
            session = self._session = CallerSession(
                self._stream_opener(), self.metadata, self._reported
            )
            self.report = None  # a new session numbers its calls from 1 again
        return session

    def _stream_opener(self) -> Callable[[Any], Any]:
        """What opens a session's stream: on the worker's session socket when it has one
        (a local worker without TLS), else on a gRPC channel."""
        path = _unix_socket.path_of(self.metadata.address)
        if path is not None and self._socket_sessions and not self.metadata.secure:
            sessions = _unix_socket.session_socket(path)
            if sessions is not None and sessions.exists():
                return lambda metadata: _socket_session.SocketStream(sessions, metadata)
        if self._channel is None:
            self._channel = self._open_channel()
        return self._channel.stream_stream(
            SESSION_METHOD,
            request_serializer=_frames.identity,
            response_deserializer=_frames.identity,
        )

    def _open_channel(self) -> grpc.aio.Channel:
        if self.metadata.secure and self._credentials is not None:
            options = CHANNEL_OPTIONS + self._credentials.channel_options()
            if self.metadata.address.startswith(UNIX_PREFIX) and not self._credentials.server_name:
                # A socket path names no host: TLS checks the certificate for "localhost".
                options = [*options, ("grpc.default_authority", UNIX_AUTHORITY)]
            return grpc.aio.secure_channel(
                self.metadata.address, self._credentials.channel_credentials(), options=options
            )
        return grpc.aio.insecure_channel(self.metadata.address, options=CHANNEL_OPTIONS)


class OutgoingTask(NamedTuple):
    """A task's wire form, built once; its start frame is made per session (cached buffers)."""

    pieces: _frames.Pieces
    """The ``Task`` message without its buffers field."""
    buffers: list[bytes]
    writable: list[bool]
    digests: list[bytes]
    """Per buffer: its content address if the worker may keep it, else ``b""``."""
    routine: bytes = b""
    """The routine's pickle, sent once per session (``wool._routine_slots``)."""

    @property
    def size(self) -> int:
        """The largest message the task takes (the frame, or one of its buffers)."""
        frame = sum(map(len, self.pieces)) + len(self.routine)
        return max([frame, *map(len, self.buffers)])

    def start_frame(
        self,
        call: int,
        holdings: _argcache.Holdings,
        accept_by: int = 0,
        routines: CallerSlots | None = None,
        standby: bool = False,
    ) -> _frames.Frame:
        """The frame that starts call ``call`` (by ``accept_by``, ms of the session; 0: no
        deadline; ``standby``: a full worker may hold it), sending the buffers and the
        routine the worker lacks."""
        slot, new = routines.place(self.routine) if routines is not None else (0, True)
        pieces = [_frames.routine_field(self.routine, slot, new), *self.pieces]
        if not self.buffers:
            return _frames.start_frame(call, pieces, accept_by, standby)
        specs: list[pb.Buffer] = []
        sent: list[bytes] = []
        for data, writable, digest in zip(self.buffers, self.writable, self.digests, strict=True):
            if digest and holdings.holds(digest):
                specs.append(pb.Buffer(writable=writable, digest=digest, cached=True))
                continue
            if digest:
                holdings.sent(digest, len(data))
            specs.append(pb.Buffer(writable=writable, digest=digest))
            sent.append(data)
        frame = _frames.start_frame(
            call, [*pieces, _frames.task_buffers(specs)], accept_by, standby
        )
        return _frames.Buffered(frame, sent) if sent else frame


def encode_task(task: Task) -> OutgoingTask:
    """The wire form of ``task``; raises ``TypeError`` naming an argument that cannot be pickled.

    Large bytes-like arguments travel out of band (``wool._payload``), after the frame,
    and large immutable ones once per worker (``wool._argcache``).
    """
    arguments = _payload.encode_arguments(task.routine, task.callable, task.args, task.kwargs)
    pieces = _frames.task_pieces(
        id=task.id,
        parent_id=task.parent_id,
        routine=task.routine,
        callable=b"",  # sent by start_frame, once per session
        arguments=arguments.data,
        proxy=task.proxy.pickled(),
        tags=sorted(task.tags),
        generator=task.generator,
        context=_context_vars.encode(task.context, task.routine),
        headers=task.headers,
    )
    digests = (
        [
            _argcache.digest_of(data, writable)
            for data, writable in zip(arguments.buffers, arguments.writable, strict=True)
        ]
        if arguments.buffers
        else arguments.buffers
    )  # the shared empty list
    routine = _serialization.dumps_routine(task.callable)
    outgoing = OutgoingTask(pieces, arguments.buffers, arguments.writable, digests, routine)
    size = outgoing.size
    limit = max_message_bytes()
    if size > limit - FRAME_OVERHEAD:
        raise ValueError(
            f"the call of routine {task.routine}() pickles to {size} bytes, over wool's "
            f"message size limit of {limit} bytes (set WOOL_MAX_MESSAGE_BYTES "
            "on callers and workers to raise it)"
        )
    return outgoing


class CallerSession:
    """One Session stream to a worker, shared by every call the caller makes to it."""

    def __init__(
        self,
        open_stream: Callable[..., Any],
        worker: WorkerMetadata,
        on_report: Callable[[pb.LoadReport], None] | None = None,
    ) -> None:
        self.worker = worker
        self._on_report = on_report
        self.last_call = 0
        """The number of the last call started on this session."""
        self.broken: BaseException | None = None
        self.established = False
        """Whether the worker answered the session as a wool worker."""
        self._drained = False
        self._code: grpc.StatusCode | None = None
        self._detail = ""
        self._answered = asyncio.Event()
        self._awaited = False
        """Whether a call waited for the worker's answer (a failure to open then warns)."""
        self._epoch = 0.0
        self.last_heard = 0.0
        """Loop time of the last frame (or the answer) from the worker."""
        self.silent = False
        """Set when a call went unaccepted past its deadline; cleared by any frame read."""
        self._calls: dict[int, RemoteCall] = {}
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[_frames.Frame | None] = asyncio.Queue()
        self._handovers = HandOvers()
        self._idle = asyncio.Event()
        self._idle.set()
        self.limit = max_message_bytes()
        """The largest message both ends accept, known once the worker answered."""
        self.holdings = _argcache.Holdings()
        """The large arguments this worker keeps (as far as this session knows)."""
        self.unaccepted = Slots(UNACCEPTED_PER_SESSION)
        """Room for calls sent to the worker that await its verdict (accepted or not)."""
        self.routines: CallerSlots | None = None
        """The routines this worker keeps for this session (None: it keeps none)."""
        self._stream = open_stream(
            metadata=((PROTOCOL_HEADER, PROTOCOL_VERSION), (LIMIT_HEADER, str(self.limit))),
        )
        self._lane = WriteLane(self._outbox, self.limit, self._stream.write)
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read())
        self._writer = loop.create_task(self._requests())

    def start(self, task: Task, give_up_at: float | None, standby: bool = False) -> RemoteCall:
        """Send ``task``'s start, to be started by the worker before ``give_up_at``
        (loop time; ``None``: no deadline), when this caller gives up on it; ``standby``:
        the worker may hold it until a slot frees rather than refuse it as full."""
        self.last_call = call_id = next(self._ids)
        call = RemoteCall(self, call_id, task)
        call.standby = standby
        self._calls[call_id] = call
        self._idle.clear()
        if self.broken is None:
            accept_by = self._accept_by(give_up_at)
            frame = task.message.start_frame(
                call_id, self.holdings, accept_by, self.routines, standby
            )
            if (
                len(self._calls) > 1
                or isinstance(frame, _frames.Buffered)
                or not self._answered.is_set()
            ):
                self._lane.queue(frame)  # with other calls: written in batches
            elif self._lane.send_now(frame):  # a lone call: no wake-up of the writer task
                self._handed_over()
            call.start_frame = self._lane.given
        call.give_up_at = give_up_at
        return call

    def restart(self, call: RemoteCall, missing: list[bytes]) -> None:
        """Send ``call``'s start again, with the cached arguments the worker lacked."""
        self.holdings.lost(missing)
        if self.broken is None:
            accept_by = self._accept_by(call.give_up_at)
            self._lane.queue(
                call.task.message.start_frame(
                    call.id, self.holdings, accept_by, self.routines, call.standby
                )
            )
            call.start_frame = self._lane.given

    def _accept_by(self, give_up_at: float | None) -> int:
        return 0 if give_up_at is None else self.deadline_ms(give_up_at)

    def deadline_ms(self, give_up_at: float) -> int:
        """``give_up_at`` (loop time) in whole milliseconds of the session, rounded down:
        on the worker's clock never later than on ours."""
        return max(1, int((give_up_at - self._epoch) * 1000))

    def send(self, request: pb.Request) -> None:
        self.send_frame(_frames.message_frame(request))

    def send_frame(self, frame: bytes) -> None:
        if self.broken is None:
            self._lane.queue(frame)

    def send_now(self, frame: bytes) -> None:
        """Send ``frame`` from the caller's own task if nothing waits to be written
        (a generator step: the streaming hot path), else queue it."""
        if self.broken is None:
            if not self._answered.is_set():
                self._lane.queue(frame)
            elif self._lane.send_now(frame):
                self._handed_over()

    def _handed_over(self) -> None:
        """The lane handed frames to gRPC: note how many by now."""
        self._handovers.record(self._lane.handed, asyncio.get_running_loop().time())

    def ignored(self, frame: int, since: float) -> bool:
        """Whether the worker has sent nothing since ``since`` (loop time) though frame
        number ``frame`` of this session was on its way by then.

        A frame still queued here was not on its way unless an earlier write has been
        stuck since then (the worker reads nothing): this caller's loop may simply not
        have given the session's writer a turn.
        """
        if self.last_heard >= since:
            return False
        sent = self._handovers.time_of(frame)
        if sent is None:
            last = self._handovers.last
            return self._lane.writing and last is not None and last <= since
        return sent <= since

    async def answered(self) -> None:
        """Wait until the worker answered the session (or it failed)."""
        self._awaited = True
        if not self._answered.is_set():
            await self._answered.wait()

    def release(self, call_id: int) -> None:
        self._calls.pop(call_id, None)
        if not self._calls:
            self._idle.set()

    async def drain(self) -> None:
        await self._idle.wait()

    def abort(self) -> None:
        self._fail(WorkerLost(f"connection to worker {self.worker.uid} was closed"), None)
        self._stream.cancel()
        self._reader.cancel()
        self._writer.cancel()

    async def _requests(self) -> None:
        """Write batches of encoded frames: everything queued by the time the stream can
        write.

        Nothing is written before the worker has answered the session: a write racing a
        worker's immediate refusal makes grpc report INTERNAL instead of its status.
        """
        try:
            await self._answered.wait()
            self._lane.set_limit(self.limit)
            await self._lane.run(self._handed_over)
            if self.broken is None:
                await self._stream.done_writing()
        except asyncio.CancelledError:
            # The session was closed: an expected end, which grpc would log as a failure.
            return
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            log.debug("session writes to worker %s ended: %r", self.worker.uid, exc)

    async def _read(self) -> None:
        error: BaseException
        code: grpc.StatusCode | None = None
        try:
            headers = await self._stream.initial_metadata()
            # The session's clock starts when its answer arrives, after the worker's
            # started (when it sent the answer): deadlines measured from here are, on
            # the worker's clock, never later than the caller's.
            self._epoch = self.last_heard = asyncio.get_running_loop().time()
            self.established = any(key == PROTOCOL_HEADER for key, _ in headers or ())
            self.limit = peer_limit(headers)
            slots = _routine_slots.advertised(headers)
            self.routines = CallerSlots(slots) if slots else None
            concurrency = peer_concurrency(headers)
            if concurrency is not None and self._on_report is not None:
                # Until its first report: none of this caller's calls runs there yet.
                self._on_report(pb.LoadReport(limit=concurrency))
            self._answered.set()
            stream = self._stream
            while (message := await stream.read()) is not _EOF:
                await self._deliver(message)  # type: ignore[arg-type]
            trailers: Headers = await self._stream.trailing_metadata()
            self._drained = (SESSION_HEADER, DRAINED) in tuple(trailers or ())
            error = ConnectionError("the worker ended the session")
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            error = exc
        except asyncio.CancelledError:
            error = ConnectionError("the session was closed")
        except Exception as exc:
            error = exc
        self._fail(error, code)

    async def _deliver(self, message: bytes) -> None:
        """Hand each frame of a batch to its call (a method: what it read is not kept
        alive until the next batch)."""
        batch = pb.Responses.FromString(message)
        self.silent = False
        self.last_heard = asyncio.get_running_loop().time()
        calls = self._calls
        for response in batch.frames:
            # A frame with buffers is the last of its batch; they follow it.
            buffers = None
            if response.buffers:
                buffers = [await _buffer(self._stream) for _ in response.buffers]
            call = calls.get(response.call)
            if call is None:
                continue  # a call this caller gave up on, or finished
            if response.confirm:
                # The worker got to the call late; this caller still waits for it.
                self.send(pb.Request(call=response.call, confirmed=True))
            else:
                call.deliver(response, buffers)
        if self._on_report is not None and batch.HasField("load"):
            self._on_report(batch.load)

    def _fail(self, error: BaseException, code: grpc.StatusCode | None) -> None:
        if self.broken is not None:
            return
        self.broken = error
        self._code = code
        self._outbox.put_nowait(None)
        self._answered.set()
        detail = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
        where = f"worker {self.worker.uid} at {self.worker.address}"
        if not self.established and isinstance(error, grpc.aio.AioRpcError):
            detail = _connect_problem(self.worker, detail or "")
            # The read loop may see the failure before the waiting call is started.
            if self._calls or self._awaited:
                log.warning("cannot open a session with %s: %s", where, detail)
        self._detail = detail
        for call in list(self._calls.values()):
            if call.taken:
                failure: BaseException = WorkerLost(
                    f"lost {where} during {call.task.routine}(): {detail}"
                )
            elif self._drained:
                # The worker is stopping and said so: it never read this call's start.
                failure = TransientDispatchError(f"{where} is stopping", worker=self.worker.uid)
            elif self.established or code in TRANSIENT_CODES:
                # The worker never accepted this call: another worker may always take it.
                failure = TransientDispatchError(
                    f"{where} is unavailable{f' ({code.name})' if code else ''}: {detail}",
                    worker=self.worker.uid,
                )
            else:
                name = code.name if code is not None else type(error).__name__
                failure = DispatchError(
                    f"{where} failed ({name}): {detail}", worker=self.worker.uid
                )
            call.deliver(failure)
        self._calls.clear()
        self._idle.set()

    def unsent_failure(self) -> DispatchError:
        """Why a call could not even be sent on this (broken) session.

        Nothing reached the worker, so another worker may always take the call, unless
        the worker refused the session outright with a non-transient status.
        """
        where = f"worker {self.worker.uid} at {self.worker.address}"
        code = self._code
        if self.established or self._drained or code is None or code in TRANSIENT_CODES:
            name = f" ({code.name})" if code is not None else ""
            return TransientDispatchError(
                f"{where} is unavailable{name}: {self._detail}", worker=self.worker.uid
            )
        detail = self._detail
        return DispatchError(f"{where} failed ({code.name}): {detail}", worker=self.worker.uid)


async def _buffer(stream: Any) -> bytes:
    """The next message of ``stream``: an out-of-band buffer announced by a frame."""
    message = await stream.read()
    if message is _EOF:
        raise ConnectionError("the worker ended the session inside a frame's buffers")
    return message


def _connect_problem(worker: WorkerMetadata, detail: str) -> str:
    """What gRPC said when a session failed before the worker answered, with a diagnosis.

    A TLS handshake the worker refuses (a missing or untrusted client certificate) or
    plaintext sent to a TLS port shows on the caller's side only as a closed socket.
    """
    text = detail.lower()
    if "wrong_version_number" in text or "wrong version number" in text:
        cause = (
            "TLS handshake failed: the worker does not answer in TLS although its record "
            "says secure (is it serving plaintext?)"
        )
    elif "certificate has expired" in text:
        cause = "TLS handshake failed: the worker's certificate has expired"
    elif "hostname verification" in text or "peer name" in text:
        cause = (
            "TLS handshake failed: the worker's certificate is not issued for the address "
            "it advertises (add that IP or name to its subjectAltName, or set "
            "WorkerCredentials(server_name=...))"
        )
    elif "unsupported certificate purpose" in text:
        cause = (
            "TLS handshake failed: the worker's certificate is not for serving TLS (its "
            "extended key usage lacks serverAuth): reissue it with serverAuth"
        )
    elif "handshake" in text and "certificate_verify_failed" in text:
        cause = (
            "TLS handshake failed: this caller does not trust the worker's certificate "
            "(it is not signed by the caller's CA)"
        )
    elif "handshake" in text:
        cause = "TLS handshake failed"
    elif any(phrase in text for phrase in ("socket closed", "connection reset", "broken pipe")):
        if worker.secure:
            cause = (
                "TLS handshake refused: the worker closed the connection, probably because "
                "it requires a client certificate (mutual TLS) signed by its CA, not "
                "expired and with the clientAuth usage, and this caller presented none or "
                "another"
            )
        else:
            cause = (
                "the worker closed the plaintext connection before answering: it may "
                "serve TLS although its record says plaintext (use wool.WorkerCredentials)"
            )
    else:
        return detail
    return f"{cause} [{detail}]"


class RemoteCall:
    """A task running on a worker, as the caller drives it."""

    def __init__(self, session: CallerSession, call_id: int, task: Task) -> None:
        self.task = task
        self.worker = session.worker
        self.is_accepted = False
        self.taken = False
        """Whether the worker answered with anything but a refusal (it took the call),
        even if that answer is not read yet."""
        self._session = session
        self._id = call_id
        # Lists, not deques: they rarely hold more than one item, and an empty list costs
        # a sixth of an empty deque in each of the (up to max_in_flight) calls in flight.
        self._inbox: list[pb.Response | BaseException] = []
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._in_step = False
        self._unanswered_steps = 0
        """Generator steps sent whose answer was not read yet (more than one when reading
        ahead)."""
        self.reading_ahead = False
        """Whether the consumer asks for steps ahead (``wool.prefetch``): items answering
        them that nobody will take are dropped when the call is cancelled."""
        self.on_finish: Callable[[], None] | None = None
        self.on_log: Callable[[pb.LogRecord], None] | None = None
        """Called with each log record the worker sends for this call, as it is read."""
        self.returned_context = b""
        """The ``wool.ContextVar`` values the routine changed, with the last frame read."""
        self._next_frame: bytes | None = None
        self._buffers: list[list[bytes]] | None = None
        """The out-of-band buffers of the answers not read yet (made when one has some)."""
        self.give_up_at: float | None = None
        """When this caller gives up on the worker taking the call (loop time; None: never)."""
        self.standby = False
        """Sent to a full worker, which may hold it until a slot frees."""
        self.start_frame = 0
        """The number of the session's frame that carries this call's (latest) start."""

    def deliver(
        self, item: pb.Response | BaseException, buffers: list[bytes] | None = None
    ) -> None:
        """Hand this call an answer from its worker, or the error that ends it."""
        if buffers:
            if self._buffers is None:
                self._buffers = []
            self._buffers.append(buffers)
        # A request for missing cached arguments (no frame) is no answer yet.
        if isinstance(item, pb.Response) and item.WhichOneof("frame") not in ("rejected", None):
            self.taken = True
        self._inbox.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self) -> pb.Response:
        while True:
            while not self._inbox:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            item = self._inbox.pop(0)
            if isinstance(item, BaseException):
                self._finish()
                raise item
            if item.WhichOneof("frame") == "log":
                if self.on_log is not None:
                    self.on_log(item.log)
                continue
            if item.context:
                self.returned_context = item.context
            return item

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._session.release(self._id)
            on_finish, self.on_finish = self.on_finish, None  # it refers back to this call
            if on_finish is not None:
                on_finish()

    def abandon(self, error: BaseException) -> None:
        """Cancel the task on its worker and fail its caller with ``error`` at once."""
        if self._finished:
            return
        self._session.send(pb.Request(call=self._id, cancel=pb.Cancel()))
        self._inbox.clear()
        self.deliver(error)

    async def accepted(self, give_up_at: float | None) -> None:
        """Wait for the worker's verdict on the task until ``give_up_at`` (loop time).

        Past it, a call the worker has not taken is given up if the worker was silent
        meanwhile: its cancel is sent (the worker never starts a call it reads a cancel
        for, nor one past the deadline the start frame carries) and
        ``WorkerUnresponsive`` sends it to another worker. A worker that is busy but
        answers other calls is given another ``accept_timeout``, and told so. A worker
        that lacks cached arguments gets the start again, with them.
        """
        self.give_up_at = give_up_at
        for _ in range(RESTARTS_FOR_MISSING_ARGUMENTS + 1):
            try:
                response = await self._verdict(self.give_up_at)
            except asyncio.CancelledError:
                await self._cancel()
                raise
            if not response.missing:
                break
            self._session.restart(self, list(response.missing))
        else:
            self._finish()
            raise TransientDispatchError(
                f"worker {self.worker.uid} at {self.worker.address} kept losing the cached "
                f"arguments of {self.task.routine}() before they could be used",
                worker=self.worker.uid,
            )
        frame = response.WhichOneof("frame")
        if frame == "accepted":
            self.is_accepted = True
            return
        if frame == "rejected":
            self._finish()
            rejected = response.rejected
            error = (
                WorkerFull
                if rejected.full
                else TransientDispatchError
                if rejected.transient
                else DispatchError
            )
            if response.late:
                error = WorkerUnresponsive  # slow, not unfit: it may be waited for
            raise error(
                f"worker {self.worker.uid} at {self.worker.address} refused "
                f"{self.task.routine}(): {response.rejected.reason}",
                worker=self.worker.uid,
            )
        # A worker that fails to even decode the task answers with its error at once.
        self.is_accepted = True
        self._inbox.insert(0, response)

    async def _verdict(self, give_up_at: float | None) -> pb.Response:
        session = self._session
        while True:
            try:
                async with asyncio.timeout_at(give_up_at):
                    return await self._next()
            except TimeoutError:
                timeout = _settings.current().accept_timeout
                now = asyncio.get_running_loop().time()
                if not self.taken and session.last_heard < now - timeout:
                    await _read_what_arrived(session, now - timeout)
                if self.taken:
                    return await self._next()  # the worker took it in time; not yet read
                if session.ignored(self.start_frame, now - timeout):
                    raise self._give_up() from None
                self.give_up_at = give_up_at = now + timeout
                accept_by = session.deadline_ms(give_up_at)
                session.send(pb.Request(call=self._id, accept_by=accept_by))

    def _give_up(self) -> WorkerUnresponsive | WorkerFull:
        self._session.send(pb.Request(call=self._id, cancel=pb.Cancel()))
        timeout = _settings.current().accept_timeout
        if self.standby:  # the worker runs a call that keeps its loop busy: expected
            self._finish()
            log.debug(
                "worker %s freed no slot for standby %s() within %gs; it waits here again",
                self.worker.uid,
                self.task.routine,
                timeout,
            )
            return WorkerFull(
                f"worker {self.worker.uid} at {self.worker.address} freed no slot for "
                f"{self.task.routine}() within {timeout:g}s",
                worker=self.worker.uid,
            )
        self._session.silent = True
        self._session.unaccepted.fail_waiters(
            WorkerUnresponsive(
                f"worker {self.worker.uid} at {self.worker.address} accepted no call within "
                f"{_settings.current().accept_timeout:g}s",
                worker=self.worker.uid,
            )
        )
        self._finish()
        log.warning(
            "worker %s at %s did not accept %s() within %gs; marked unresponsive until it "
            "answers; the call goes to another worker if one accepts it",
            self.worker.uid,
            self.worker.address,
            self.task.routine,
            _settings.current().accept_timeout,
        )
        return WorkerUnresponsive(
            f"worker {self.worker.uid} at {self.worker.address} did not accept "
            f"{self.task.routine}() within {_settings.current().accept_timeout:g}s (is its "
            "event loop blocked?)",
            worker=self.worker.uid,
        )

    async def result(self) -> Any:
        """Wait for a coroutine routine's result, or raise its exception."""
        try:
            response = await self._next()
        except asyncio.CancelledError:
            await self._cancel()
            raise
        self._finish()
        return self._decode(response)

    @property
    def is_finished(self) -> bool:
        """Whether the task has ended here (its outcome was read, or the call failed)."""
        return self._finished

    @property
    def is_stepping(self) -> bool:
        """Whether a generator step is waiting for the worker's answer."""
        return self._in_step or self._unanswered_steps > 0

    async def step(self, kind: str, value: Any = None) -> Any:
        """Advance a generator routine by one step; ``StopAsyncIteration`` when it ends."""
        if self._finished:
            raise StopAsyncIteration
        self.send_step(kind, value)
        return await self.step_outcome(kind)

    def send_step(self, kind: str, value: Any = None, context: bytes = b"") -> None:
        """Ask the worker for one generator step (``next``, ``send``, ``throw``, ``close``).

        ``context``: the consumer's ``wool.ContextVar`` values that changed, pickled.
        Raises ``TypeError`` or ``ValueError`` (nothing is sent) for a value that cannot
        travel; :meth:`step_outcome` then waits for the answer.
        """
        session = self._session
        if context:
            payload = b"" if kind in ("close", "next") else self._encode_step_value(kind, value)
            step = pb.Step(kind=STEP_KINDS[kind], value=payload)
            frame = _frames.message_frame(pb.Request(call=self._id, step=step, context=context))
        elif kind == "next":
            frame = self._next_frame
            if frame is None:
                frame = self._next_frame = _frames.message_frame(
                    pb.Request(call=self._id, step=pb.Step())
                )
        else:
            payload = b"" if kind == "close" else self._encode_step_value(kind, value)
            step = pb.Step(kind=STEP_KINDS[kind], value=payload)
            frame = _frames.message_frame(pb.Request(call=self._id, step=step))
        self._unanswered_steps += 1
        session.send_now(frame)

    def send_next_steps(self, count: int, context: bytes = b"") -> None:
        """Ask for ``count`` more ``next`` steps at once, in one message (reading ahead);
        ``context`` goes with the first."""
        frame = self._next_frame
        if frame is None:
            frame = self._next_frame = _frames.message_frame(
                pb.Request(call=self._id, step=pb.Step())
            )
        data = frame * count
        if context:
            request = pb.Request(call=self._id, step=pb.Step(), context=context)
            data = _frames.message_frame(request) + frame * (count - 1)
        self._unanswered_steps += count
        self._session.send_now(data)

    async def step_outcome(self, kind: str) -> Any:
        """The item the step sent by :meth:`send_step` yielded, or what ended the generator.

        ``StopAsyncIteration`` when the generator ended (a ``close`` step ends it so).
        """
        self._in_step = True
        try:
            response = await self._next()
        except asyncio.CancelledError:
            await self._cancel()
            raise
        finally:
            self._in_step = False
        self._unanswered_steps -= 1
        frame = response.WhichOneof("frame")
        if frame == "value":
            return self._unpickle(response, "item yielded by")
        self._finish()
        if frame == "stopped":
            raise StopAsyncIteration
        return self._decode(response)

    async def close(self) -> None:
        """Close a generator routine that has not finished (runs its ``finally`` remotely)."""
        if self._finished:
            return
        if self.is_stepping:
            await self._cancel()
            return
        try:
            await self.step("close")
        except StopAsyncIteration:
            pass

    def _encode_step_value(self, kind: str, value: Any) -> bytes:
        if kind == "throw":
            data = _serialization.encode_exception(value, routine=self.task.routine, worker="")
        else:
            try:
                data = _serialization.dumps(value)
            except Exception as exc:
                raise TypeError(
                    f"value sent to generator routine {self.task.routine}() cannot be "
                    f"pickled: {exc}"
                ) from exc
        limit = self._session.limit
        if len(data) > limit - FRAME_OVERHEAD:
            raise ValueError(
                f"value sent to generator routine {self.task.routine}() pickles to "
                f"{len(data)} bytes, over the message size limit of {limit} bytes "
                f"that worker {self.worker.uid} and this caller share (WOOL_MAX_MESSAGE_BYTES)"
            )
        return data

    def _unpickle(self, response: pb.Response, what: str) -> Any:
        buffers = self._buffers.pop(0) if response.buffers and self._buffers else []
        try:
            return _payload.loads(response.value, buffers, [b.writable for b in response.buffers])
        except Exception as exc:
            raise pickle.UnpicklingError(
                f"the {what} routine {self.task.routine}() on worker {self.worker.uid} could "
                f"not be unpickled here ({type(exc).__name__}: {exc}); is what it returns "
                "importable in the caller?"
            ) from exc

    def _decode(self, response: pb.Response) -> Any:
        frame = response.WhichOneof("frame")
        if frame == "value":
            return self._unpickle(response, "result of")
        if frame == "error":
            raise _serialization.decode_exception(
                response.error, routine=self.task.routine, worker=self.worker.uid
            )
        if frame == "cancelled":
            raise asyncio.CancelledError(
                f"routine {self.task.routine}() was cancelled on its worker"
            )
        raise WorkerLost(f"unexpected {frame!r} frame from worker {self.worker.uid}")

    @property
    def id(self) -> int:
        """This call's number on its session."""
        return self._id

    async def _cancel(self) -> None:
        """Cancel the remote task and wait (briefly) until its ``finally`` blocks ran."""
        if self._finished:
            return
        self._session.send(pb.Request(call=self._id, cancel=pb.Cancel()))
        try:
            async with asyncio.timeout(CANCEL_CONFIRM_SECONDS):
                while True:
                    frame = (await self._next()).WhichOneof("frame")
                    if frame == "value" and self.reading_ahead:
                        continue  # an item read ahead that nobody will take
                    if frame in ("cancelled", "value", "error", "stopped"):
                        break
        except (TimeoutError, asyncio.CancelledError, ConnectionError, DispatchError):
            pass
        finally:
            self._finish()


async def _read_what_arrived(session: CallerSession, since: float) -> None:
    """Give this loop a few turns to read the frames already on their way.

    A caller's loop busy with other work (thousands of calls dispatched at once) can
    fire a call's timer before its session reader ran: silence counts only once the
    reader had its turn.
    """
    for _ in range(CATCH_UP_TURNS):
        await asyncio.sleep(0)
        if session.last_heard >= since:
            return


CATCH_UP_TURNS = 8
"""Loop turns a caller gives its session reader before it calls a worker silent."""

UNACCEPTED_PER_SESSION = 512
"""Calls a caller sends a worker before the worker accepted (or refused) earlier ones:
enough to keep a worker busy, few enough that it answers them all well within the
accept timeout on a loaded machine (more wait at the caller, without a deadline)."""
RESTARTS_FOR_MISSING_ARGUMENTS = 3
"""How often a call is sent again to a worker that lost its cached arguments meanwhile
(each time with them): more means another caller evicts them faster than they arrive."""
CANCEL_CONFIRM_SECONDS = 5.0
"""How long a cancelled caller waits for the worker to confirm that the task stopped."""
