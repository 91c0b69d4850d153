"""Wool's limits and timeouts: one frozen object, read from the environment once.

Every number that shapes how wool behaves is a field here, with the reason for its value.
Code reads :func:`current` where it needs one (it never copies a value at import time),
so a test changes a setting in one place with :func:`override`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Mapping
from typing import Any

import attrs

MESSAGE_BYTES_VARIABLE = "WOOL_MAX_MESSAGE_BYTES"
MIN_MESSAGE_BYTES = 128 * 1024
"""Twice the room a frame's envelope may take: below it no task could be sent at all."""


@attrs.frozen
class Settings:
    """Wool's limits and timeouts (seconds unless the name says otherwise)."""

    max_message_bytes: int = 512 * 1024 * 1024
    """Largest frame either side sends or accepts (``WOOL_MAX_MESSAGE_BYTES``): large
    enough for big arguments, small enough that one bad frame cannot exhaust memory."""

    start_timeout: float = 60.0
    """How long a spawned worker may take to serve: a cold interpreter importing numpy on
    a loaded machine takes seconds, a worker stuck for a minute will not recover."""

    kill_margin: float = 5.0
    """Time past its grace a stopping worker gets to exit (closing its server, running
    hooks) before it is killed."""

    pool_grace: float = 2.0
    """Default ``WorkerPool(grace=)``: a script's pool exits quickly."""

    command_grace: float = 10.0
    """Default ``wool worker --grace``: a deployment's tasks are longer and a restart of
    the service should not lose them."""

    max_in_flight: int = 10_000
    """Default ``WorkerPool(max_in_flight=)``: far above what one caller needs, low enough
    that a runaway loop of calls waits instead of exhausting the caller's memory."""

    wait_for_workers: float = 10.0
    """Default ``WorkerPool(wait_for_workers=)``: covers a worker's start on a slow machine."""

    publish_timeout: float = 5.0
    """How long one discovery publish (or withdrawal) may take before it is reported as
    failed: a local publish takes milliseconds, a LAN one well under a second."""

    restart_tries: int = 5
    """Consecutive failed (re)starts of a worker after which it is no longer restarted:
    enough to ride out a transient problem (a port in TIME_WAIT, a full disk cleared)."""

    restart_backoff: float = 0.25
    """Delay before the first restart of a dead worker; it doubles with each failed try."""

    restart_backoff_max: float = 8.0
    """Longest delay between two restarts of one worker."""

    stable_after: float = 10.0
    """A worker that served this long before dying counts as healthy: its next restart
    starts the count of tries (and the backoff) afresh."""

    argument_cache_bytes: int = 256 * 1024 * 1024
    """Memory a worker keeps of large arguments it received (so a repeated one is not
    sent again), and that a caller assumes each worker keeps: room for a few arrays of
    tens of megabytes, a small part of a worker machine's memory."""

    stderr_tail_lines: int = 20
    """Lines of a spawned worker's error output kept to explain why it could not start."""

    accept_timeout: float = 2.0
    """How long a caller waits for a worker to accept a call before giving the call to
    another worker: a worker whose event loop is blocked (a routine calling time.sleep)
    answers nothing, and calls should not queue behind it while others are idle."""

    accept_margin: float = 0.5
    """A worker starts a call without asking its caller only if its ``accepted`` frame left
    this long before the caller's deadline: the time that frame may take to reach the
    caller (and the drift of the two clocks over a session) must stay below it."""

    proxy_cache_size: int = 32
    """Idle caller proxies a worker keeps for nested calls (about one per caller pool that
    made some lately); beyond it the least recently used are stopped: each holds
    connections."""

    proxy_idle: float = 60.0
    """How long a worker keeps a caller proxy no task uses: a caller pool that left sends
    it no more, one that comes back only pays for reconnecting."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings with the values the environment overrides; ``ValueError`` names a bad one."""
        environ = os.environ if environ is None else environ
        raw = environ.get(MESSAGE_BYTES_VARIABLE)
        if raw is None:
            return cls()
        try:
            limit = int(raw)
        except ValueError:
            raise ValueError(
                f"{MESSAGE_BYTES_VARIABLE} must be a number of bytes, got {raw!r}"
            ) from None
        if limit < MIN_MESSAGE_BYTES:
            raise ValueError(
                f"{MESSAGE_BYTES_VARIABLE} must be at least {MIN_MESSAGE_BYTES} bytes, got {limit}"
            )
        return cls(max_message_bytes=limit)


DEFAULTS = Settings()
"""The built-in values, for signatures that show them."""

_current: Settings | None = None


def current() -> Settings:
    """The settings of this process, read from the environment the first time."""
    global _current
    if _current is None:
        _current = Settings.from_environment()
    return _current


def install(settings: Settings) -> None:
    """Make ``settings`` this process's settings (a spawned worker takes its parent's)."""
    global _current
    _current = settings


@contextlib.contextmanager
def override(**changes: Any) -> Generator[Settings]:
    """Change some settings of this process for the duration of a block (for tests)."""
    global _current
    before = current()
    _current = attrs.evolve(before, **changes)
    try:
        yield _current
    finally:
        _current = before
