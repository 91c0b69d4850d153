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


def printable(value: object) -> str:
    """``value`` as text with control and format characters escaped (``\\x1b``, ``\\n``,
    ``\\u202e``), so that a field read from elsewhere can neither rewrite a terminal nor
    forge log lines."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LimitFilter(logging.Filter):
    """A logging filter that escapes the string arguments of every record (with
    :func:`printable`) and lets through at most ``burst`` records of ``level`` or worse
    of each kind (logger, message template, and the pool logging it) per ``period``
    seconds; the first one let through after a pause says how many were left out.

    Attach it to a logger (``logger.addFilter(LimitFilter())``) for one budget per
    process, or keep one per object and log through :meth:`log` for one budget each.
    """

    def __init__(
        self, *, burst: int = BURST, period: float = PERIOD, level: int = logging.WARNING
    ) -> None:
        super().__init__()
        if burst < 1 or period <= 0:
            raise ValueError(f"LimitFilter needs burst >= 1 and period > 0, got {burst}, {period}")
        self.burst, self.period, self.level = burst, period, level
        self._windows: dict[tuple[str, object, str | None], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape ``record``'s string arguments; ``False`` when its kind is over budget."""
        if isinstance(record.args, tuple):
            record.args = tuple(printable(a) if isinstance(a, str) else a for a in record.args)
        if record.levelno < self.level:
            return True
        admitted, left_out = self._admit(record.name, record.msg)
        if admitted and left_out:
            record.msg = f"{record.msg} ({left_out} similar lines left out)"
        return admitted

    def log(self, logger: logging.Logger, level: int, message: str, *args: object) -> None:
        """Log ``message % args`` on ``logger`` (string arguments escaped) if this filter
        lets it through; a line over budget costs no log record."""
        if not logger.isEnabledFor(level):
            return
        if level >= self.level:
            admitted, left_out = self._admit(logger.name, message)
            if not admitted:
                return
            if left_out:
                message = f"{message} ({left_out} similar lines left out)"
        escaped = tuple(printable(a) if isinstance(a, str) else a for a in args)
        logger.handle(
            logger.makeRecord(logger.name, level, "(unknown file)", 0, message, escaped, None)
        )

    def _admit(self, name: str, message: object) -> tuple[bool, int]:
        """Whether a line of this kind may pass now, and how many were left out before."""
        key = (name, message, scope.get())
        now = time.monotonic()
        if len(self._windows) > _MAX_WINDOWS:
            self._windows = {k: w for k, w in self._windows.items() if now - w[0] < self.period}
        start, passed, left_out = self._windows.get(key, (now, 0, 0))
        if now - start >= self.period:
            start, passed = now, 0
        if passed >= self.burst:
            self._windows[key] = (start, passed, left_out + 1)
            return False, left_out
        self._windows[key] = (start, passed + 1, 0)
        return True, left_out


def install(*loggers: logging.Logger) -> None:
    """Put one :class:`LimitFilter` on each of ``loggers`` (once)."""
    for logger in loggers:
        if not any(isinstance(f, LimitFilter) for f in logger.filters):
            logger.addFilter(LimitFilter())
