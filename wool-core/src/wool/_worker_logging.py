"""A worker process's logging: its own log, and the capture of what its tasks emit.

A handler on the root logger hands each record emitted inside a task to the task's
:class:`~wool._worker_log_capture.LogSink` (any logger, any thread the task's context was copied
into), and ``sys.stdout``/``sys.stderr`` are replaced by streams that turn a task's lines
into records of ``wool.worker.stdout``/``wool.worker.stderr``. Outside a task, everything
goes where it always went.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, TextIO

from wool._worker_log_capture import (
    NOT_FORWARDED,
    STDERR_LOGGER,
    STDOUT_LOGGER,
    STREAM_LEVELS,
    current_sink,
)


class _ForwardingHandler(logging.Handler):
    """Hands each record emitted inside a task to that task's sink."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = current_sink.get()
        if sink is None or not sink.forwarding or record.name.startswith(NOT_FORWARDED):
            return
        sink.put_record(record)


class _TaskStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of a worker: a task's lines go to its caller."""

    def __init__(self, real: TextIO, logger: str) -> None:
        self._real = real
        self._logger = logger
        self._level = STREAM_LEVELS[logger]

    def write(self, text: str) -> int:
        sink = current_sink.get()
        if sink is None or not sink.forwarding:
            return self._real.write(text)
        sink.put_line(self._logger, self._level, text)
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._real.fileno()

    def isatty(self) -> bool:
        return self._real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._real.encoding

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _TaskFields(logging.Filter):
    """Names the worker, task and routine on each record of the worker's own log.

    Records that went to the caller are left out of it (they would show twice where a
    pool's workers share the caller's terminal).
    """

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        sink = current_sink.get()
        if sink is not None and sink.forwarding and not record.name.startswith(NOT_FORWARDED):
            return False
        attrs = record.__dict__
        attrs.setdefault("wool_worker", sink.worker if sink else self.worker)
        attrs.setdefault("wool_task_id", sink.task_id if sink else "-")
        attrs.setdefault("wool_routine", sink.routine if sink else "-")
        return True


WORKER_LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(wool_worker)s task=%(wool_task_id)s "
    "routine=%(wool_routine)s %(name)s: %(message)s"
)
"""The format of a worker process's own log."""


def configure_worker_logging(level: int, worker: str) -> None:
    """Set up a worker process: its own log on stderr, and capture for its tasks."""
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter(WORKER_LOG_FORMAT))
    console.addFilter(_TaskFields(worker))
    root.addHandler(_ForwardingHandler())
    root.addHandler(console)
    root.setLevel(level)
    # gRPC's own debug output is for whoever debugs gRPC, not for callers.
    logging.getLogger("grpc").setLevel(max(level, logging.INFO))
    sys.stdout = _TaskStream(sys.stdout, STDOUT_LOGGER)
    sys.stderr = _TaskStream(sys.stderr, STDERR_LOGGER)
