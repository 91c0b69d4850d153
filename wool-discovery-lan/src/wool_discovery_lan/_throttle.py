"""Log lines about what other hosts send: control characters escaped, repeats rate-limited."""

from __future__ import annotations

import logging
import time

BURST = 5
"""Lines of one kind logged per period; the rest are counted and summed up later."""
PERIOD = 60.0
"""Seconds over which :data:`BURST` lines of one kind may be logged."""


def printable(value: object) -> str:
    """``value`` as text with control and format characters escaped (``\\x1b``, ``\\n``,
    ``\\u202e``), so that a field read from the network cannot rewrite a terminal or
    forge log lines."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Throttle:
    """Logs at most :data:`BURST` lines of each ``kind`` per :data:`PERIOD` seconds; the
    next line logged after a quiet spell says how many were left out."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> (start, logged, left out)

    def log(self, level: int, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` (string arguments escaped) unless ``kind`` is over its
        budget."""
        if not self._logger.isEnabledFor(level):
            return
        now = time.monotonic()
        start, logged, left_out = self._windows.get(kind, (now, 0, 0))
        if now - start >= PERIOD:
            start, logged = now, 0
        if logged >= BURST:
            self._windows[kind] = (start, logged, left_out + 1)
            return
        if left_out:
            message += f" ({left_out} similar lines left out)"
        self._windows[kind] = (start, logged + 1, 0)
        self._logger.log(level, message, *(printable(a) for a in args))
