"""On a worker: the log records and output lines of a task, on their way to its caller.

While a task runs, its context holds a :class:`LogSink`; the worker process's logging
(``_worker_logging``) hands it every record emitted in that context and every line the
task prints. The sink queues the records as frames on the task's session, never
blocking: while the caller reads too slowly it holds at most :data:`SINK_LIMIT` records
(:data:`SINK_BYTES` of text) and drops, and counts, what does not fit.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from wool import _frames
from wool._wire import worker_pb2 as pb

if TYPE_CHECKING:
    from wool._metadata import WorkerMetadata
    from wool._task import Task

STDOUT_LOGGER = "wool.worker.stdout"
"""The logger whose records are the lines a routine wrote to stdout (level INFO)."""
STDERR_LOGGER = "wool.worker.stderr"
"""The logger whose records are the lines a routine wrote to stderr (level WARNING)."""
LOSS_LOGGER = "wool.worker.logs"
"""The caller's logger that reports records dropped because the caller read too slowly."""
STREAM_LOGGERS = frozenset({STDOUT_LOGGER, STDERR_LOGGER})

SINK_LIMIT = 10_000
"""Records one task may have waiting for its caller; more are dropped (and counted)."""
SINK_BYTES = 16 * 1024 * 1024
"""Bytes of text one task may have waiting for its caller, whatever the record count."""
SESSION_BACKLOG = 1024
"""Frames a session may have waiting for the network before log records wait instead."""
_RECORD_OVERHEAD = 128
MAX_MESSAGE_CHARS = 64 * 1024
"""Longer log messages are cut: a record must never approach the frame size limit."""
NOT_FORWARDED = ("grpc",)
"""Loggers whose records stay on the worker (gRPC's own debug output)."""

HOST = socket.gethostname()

current_sink: ContextVar[LogSink | None] = ContextVar("wool_log_sink", default=None)
"""The sink of the task running in this context (on workers)."""


class LogChannel:
    """A session's outgoing frames, as log sinks see them: room left, and wake-ups."""

    def __init__(self, outbox: asyncio.Queue[Any]) -> None:
        self._outbox = outbox
        self._waiting: dict[LogSink, None] = {}
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        """The thread of the session's event loop."""

    def has_room(self) -> bool:
        """Whether the session is keeping up with what it sends."""
        return self._outbox.qsize() < SESSION_BACKLOG

    def send(self, frame: bytes) -> None:
        """Queue a frame for the session."""
        self._outbox.put_nowait(frame)

    def wait(self, sink: LogSink) -> None:
        """Flush ``sink`` again once the session wrote something."""
        self._waiting[sink] = None

    def written(self) -> None:
        """The session wrote a batch: sinks waiting for room may go on."""
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, {}
        for sink in waiting:
            sink.flush()


class LogSink:
    """The log records and output lines of one task, on their way to the caller.

    ``forwarding`` False (``WorkerPool(forward_logs=False)``): nothing is sent; the sink
    only names the task for the worker's own log.
    """

    __slots__ = (
        "_call_id",
        "_channel",
        "_closed",
        "_dropped",
        "_lock",
        "_partial",
        "_pending",
        "_pending_bytes",
        "_scheduled",
        "forwarding",
        "level",
        "routine",
        "task_id",
        "worker",
    )

    def __init__(
        self,
        task: Task,
        worker: WorkerMetadata,
        call_id: int,
        channel: LogChannel | None,
        level: int | None,
    ) -> None:
        self.routine = task.routine
        self.task_id = task.id
        self.worker = worker.uid
        self.forwarding = channel is not None and level is not None
        self.level = level if level is not None else logging.CRITICAL + 1
        self._call_id = call_id
        self._channel = channel
        self._lock = threading.Lock()
        self._pending: collections.deque[pb.LogRecord] = collections.deque()
        self._pending_bytes = 0
        self._partial: dict[str, str] = {}
        self._dropped = 0
        self._scheduled = False
        self._closed = False
        if self.forwarding:
            _admit_level(self.level)

    # -- producers (any thread) ----------------------------------------------------------

    def put_record(self, record: logging.LogRecord) -> None:
        """Send a record emitted in this task's context (if its level is wanted)."""
        if record.levelno < self.level and record.name not in STREAM_LOGGERS:
            return
        self.put(self._encode(record))

    def put_line(self, logger: str, level: int, text: str) -> None:
        """Send what a routine wrote to a stream, one record per complete line."""
        with self._lock:
            text = self._partial.pop(logger, "") + text
            *lines, rest = text.split("\n")
            if rest:
                self._partial[logger] = rest
        for line in lines:
            self.put(self._line(logger, level, line))

    def put(self, message: pb.LogRecord) -> None:
        """Queue a record for the caller; drop it (counted) when too many wait."""
        size = _size(message)
        with self._lock:
            if self._closed:
                return
            if len(self._pending) >= SINK_LIMIT or self._pending_bytes + size > SINK_BYTES:
                self._dropped += 1
                return
            if self._dropped:
                message.dropped, self._dropped = self._dropped, 0
            self._pending.append(message)
            self._pending_bytes += size
            if self._scheduled:
                return
            self._scheduled = True
        channel = self._channel
        assert channel is not None
        if threading.get_ident() == channel.thread:
            self.flush()
        else:
            try:
                channel.loop.call_soon_threadsafe(self.flush)
            except RuntimeError:  # the worker's loop is gone
                pass

    # -- the worker's loop --------------------------------------------------------------

    def flush(self, *, force: bool = False) -> None:
        """Move waiting records to the session, as far as it has room (``force``: all)."""
        channel = self._channel
        with self._lock:
            self._scheduled = False
        if channel is None:
            return
        while True:
            with self._lock:
                if not self._pending:
                    return
                if not force and not channel.has_room():
                    channel.wait(self)
                    return
                message = self._pending.popleft()
                self._pending_bytes -= _size(message)
            channel.send(_frames.message_frame(pb.Response(call=self._call_id, log=message)))

    def close(self) -> None:
        """The task ended: send every record still waiting, and report what was dropped."""
        if not (self._pending or self._partial or self._dropped):
            self._closed = True
            return
        with self._lock:
            partial, self._partial = self._partial, {}
        for logger, text in partial.items():
            self.put(self._line(logger, STREAM_LEVELS[logger], text))
        with self._lock:
            if self._dropped:
                marker = pb.LogRecord(
                    dropped=self._dropped,
                    routine=self.routine,
                    task_id=self.task_id,
                    worker=self.worker,
                    host=HOST,
                )
                self._pending.append(marker)
                self._dropped = 0
            self._closed = True
        self.flush(force=True)

    # -- encoding -----------------------------------------------------------------------

    def _encode(self, record: logging.LogRecord) -> pb.LogRecord:
        try:
            message = record.getMessage()
        except Exception as exc:  # bad format arguments: still say something
            message = f"{record.msg!r} (could not be formatted: {exc})"
        exception = getattr(record, "exc_text", None) or ""
        if record.exc_info and not exception:
            exception = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.stack_info:
            exception = f"{exception}\n{record.stack_info}".strip("\n")
        attrs = record.__dict__
        return pb.LogRecord(
            logger=record.name,
            level=record.levelno,
            message=message[:MAX_MESSAGE_CHARS],
            created=record.created,
            exception=exception[:MAX_MESSAGE_CHARS],
            pathname=record.pathname or "",
            lineno=record.lineno or 0,
            function=record.funcName or "",
            thread=record.threadName or "",
            process=record.process or 0,
            routine=attrs.get("wool_routine") or self.routine,
            task_id=attrs.get("wool_task_id") or self.task_id,
            worker=attrs.get("wool_worker") or self.worker,
            host=attrs.get("wool_host") or HOST,
        )

    def _line(self, logger: str, level: int, line: str) -> pb.LogRecord:
        record = logging.LogRecord(logger, level, "", 0, line, None, None)
        return self._encode(record)


def _size(message: pb.LogRecord) -> int:
    return len(message.message) + len(message.exception) + _RECORD_OVERHEAD


STREAM_LEVELS = {STDOUT_LOGGER: logging.INFO, STDERR_LOGGER: logging.WARNING}


def _admit_level(level: int) -> None:
    """Let records of ``level`` be made in this process (a caller wants them)."""
    root = logging.getLogger()
    if root.level > level:
        root.setLevel(level)


def log_sink_factory(
    channel: LogChannel, call_id: int, level: int | None
) -> Callable[[Task, WorkerMetadata], LogSink]:
    """What a worker lifecycle calls to make its task's sink."""
    return lambda task, worker: LogSink(task, worker, call_id, channel, level)
