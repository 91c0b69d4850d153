"""In a caller: re-emit the log records a worker sent back, through ``logging``.

Each record goes to the logger of the same name, so the caller's levels, filters,
handlers and formats apply, and carries ``wool_routine``, ``wool_task_id``,
``wool_worker`` and ``wool_host`` as attributes. When the caller is itself running a
task on a worker (a nested call), the record travels on to that task's caller instead.
"""

from __future__ import annotations

import logging
import sys

from wool._wire import worker_pb2 as pb
from wool._worker_log_capture import LOSS_LOGGER, STDERR_LOGGER, STDOUT_LOGGER, current_sink

_loss = logging.getLogger(LOSS_LOGGER)


def reemit(message: pb.LogRecord) -> None:
    """Emit a record sent by a worker here (or pass it on to this task's caller)."""
    sink = current_sink.get()
    if sink is not None and sink.forwarding:
        sink.put(message)
        return
    if message.dropped:
        _loss.warning(
            "%d log records of %s() (task %s) on worker %s were dropped: this process did "
            "not read them as fast as the routine emitted them",
            message.dropped,
            message.routine or "a routine",
            message.task_id or "?",
            message.worker or "?",
            extra=_origin(message),
        )
    if not message.logger:
        return
    logger = logging.getLogger(message.logger)
    if message.logger in (STDOUT_LOGGER, STDERR_LOGGER) and not _has_handlers(logger):
        # Nobody set up logging here: a printed line stays a printed line.
        stream = sys.stdout if message.logger == STDOUT_LOGGER else sys.stderr
        print(message.message, file=stream)
        return
    if not logger.isEnabledFor(message.level):
        return
    logger.handle(_record(message))


def _record(message: pb.LogRecord) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {
            "name": message.logger,
            "levelno": message.level,
            "levelname": logging.getLevelName(message.level),
            "msg": message.message,
            "args": None,
            "pathname": message.pathname,
            "filename": message.pathname.rpartition("/")[2],
            "module": message.pathname.rpartition("/")[2].partition(".")[0],
            "lineno": message.lineno,
            "funcName": message.function,
            "threadName": message.thread,
            "process": message.process,
            "exc_text": message.exception or None,
            **_origin(message),
        }
    )
    record.created = message.created
    record.msecs = (message.created - int(message.created)) * 1000
    return record


def wanted_level() -> int:
    """The lowest level this process would handle: its root level, or any logger's set lower.

    A pool sends it to workers, so that records nobody here would see are not sent.
    """
    manager = logging.Logger.manager
    levels = [logging.getLogger().getEffectiveLevel()]
    for logger in list(manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels.append(logger.level)
    return max(min(levels), logging.DEBUG)


def _origin(message: pb.LogRecord) -> dict[str, str]:
    return {
        "wool_routine": message.routine,
        "wool_task_id": message.task_id,
        "wool_worker": message.worker,
        "wool_host": message.host,
    }


def _has_handlers(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            return True
        current = current.parent if current.propagate else None
    return False
