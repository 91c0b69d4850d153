"""A child's stderr passed through to ours, with its last lines kept to explain a failure.

A thread copies the pipe, so a worker never stalls on a full pipe while its parent's
event loop is busy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import threading

CHUNK = 64 * 1024
MAX_LINE = 4096
"""Characters of one line kept for a report (the whole line still passes through)."""


class StderrTail:
    """Reads the pipe ``fd`` until end of file, copying it to ``sys.stderr``."""

    def __init__(self, fd: int, lines: int) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._lock = threading.Lock()
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._ended = self._loop.create_future()
        self._thread = threading.Thread(target=self._copy, name="wool-worker-stderr", daemon=True)
        self._thread.start()

    def text(self) -> str:
        """The kept lines, each on a line of its own and indented, or ``""``."""
        with self._lock:
            lines = list(self._lines)
        return "".join(f"\n    {line}" for line in lines)

    async def ended(self, timeout: float) -> bool:  # noqa: ASYNC109 (False after it: an answer, not a cancellation)
        """Wait up to ``timeout`` seconds for end of file; False if the pipe is still open
        (a grandchild of the worker holds it)."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._ended)
        except TimeoutError:
            return False
        # It resolved the future on its way out: what is left of it takes no time.
        self._thread.join(timeout)
        return True

    def _copy(self) -> None:
        partial = b""
        try:
            while chunk := os.read(self._fd, CHUNK):
                _write_through(chunk)
                *complete, partial = (partial + chunk).split(b"\n")
                partial = partial[-MAX_LINE:]
                self._keep(complete)
            self._keep([partial] if partial else [])
        finally:
            os.close(self._fd)
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(_resolve, self._ended)

    def _keep(self, lines: list[bytes]) -> None:
        kept = [
            line[:MAX_LINE].decode(errors="replace") for line in lines[-(self._lines.maxlen or 1) :]
        ]
        with self._lock:
            self._lines.extend(kept)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _write_through(chunk: bytes) -> None:
    stream = sys.stderr
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(chunk)
        else:
            stream.write(chunk.decode(errors="replace"))
        stream.flush()
    except (OSError, ValueError):
        pass  # our own stderr is gone; the worker keeps running
