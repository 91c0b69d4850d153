"""A logging filter for lines about other processes' records: control characters in
their arguments escaped, and repeats of a warning rate-limited."""

from __future__ import annotations

import contextvars
import logging
import time

BURST = 10
"""Warnings of one kind (logger, message template and pool) let through per period."""
PERIOD = 60.0
"""Seconds over which :data:`BURST` warnings of one kind may pass; the first one after
that says how many were left out."""
_MAX_WINDOWS = 1024

scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("wool_log_scope", default=None)
"""Whose warnings these are (a pool proxy's id): each scope has its own budget, so one
pool's flood does not silence another's warnings."""


def printable(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LimitFilter(logging.Filter):
    """Escapes string arguments of every record; lets through at most :data:`BURST`
    warnings (or worse) of each kind per :data:`PERIOD` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[tuple[str, object, str | None], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(printable(a) if isinstance(a, str) else a for a in record.args)
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg, scope.get())
        now = time.monotonic()
        if len(self._windows) > _MAX_WINDOWS:
            self._windows = {k: w for k, w in self._windows.items() if now - w[0] < PERIOD}
        start, passed, left_out = self._windows.get(key, (now, 0, 0))
        if now - start >= PERIOD:
            start, passed = now, 0
        if passed >= BURST:
            self._windows[key] = (start, passed, left_out + 1)
            return False
        if left_out:
            record.msg = f"{record.msg} ({left_out} similar lines left out)"
        self._windows[key] = (start, passed + 1, 0)
        return True


def install(*loggers: logging.Logger) -> None:
    """Put one :class:`LimitFilter` on each of ``loggers`` (once)."""
    for logger in loggers:
        if not any(isinstance(f, LimitFilter) for f in logger.filters):
            logger.addFilter(LimitFilter())
