"""SIGTERM as a clean exit for a program that holds a WorkerPool open.

By default SIGTERM ends a Python process on the spot: a pool's workers, its discovery
records and its namespace files would be left for someone else to sweep. While a pool is
open in the main thread's event loop, and only if SIGTERM still has its default action
(the program installed no handler of its own, with ``signal.signal`` or
``loop.add_signal_handler``), the pools install one that does what Ctrl-C does in
``asyncio.run``: it cancels the tasks that entered the pools, so that each pool is left
normally (its calls get their grace, its workers are stopped, its files removed). When
the last of them has been left, ``SystemExit(143)`` (128 + SIGTERM) ends the program
with the status a shell reports for SIGTERM. A second SIGTERM ends it at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("wool.pool")

EXIT_STATUS = 128 + signal.SIGTERM
"""The status a shell reports for a process ended by SIGTERM."""


class _LoopState:
    def __init__(self) -> None:
        self.guards: set[Guard] = set()
        self.received = False


_states: dict[asyncio.AbstractEventLoop, _LoopState] = {}


class Guard:
    """One open pool under the SIGTERM handler."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[object],
        what: object,
        on_signal: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.task = task
        self.what = what
        self.on_signal = on_signal

    def leave(self) -> None:
        """The pool was left; after the last one, exit if SIGTERM came meanwhile."""
        state = _states.get(self.loop)
        if state is None or self not in state.guards:
            return
        state.guards.discard(self)
        if state.guards:
            return
        del _states[self.loop]
        self.loop.remove_signal_handler(signal.SIGTERM)
        if state.received:
            raise SystemExit(EXIT_STATUS)


def enter(what: object, on_signal: Callable[[], None]) -> Guard | None:
    """Put the pool ``what``, being entered by the current task, under the handler;
    ``on_signal`` runs in the handler, before the task is cancelled.

    None when the handler does not apply (another thread, or the program handles SIGTERM).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        return None
    state = _states.get(loop)
    if state is None:
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None
        try:
            loop.add_signal_handler(signal.SIGTERM, _on_sigterm, loop)
        except (NotImplementedError, RuntimeError, ValueError):
            return None
        state = _states[loop] = _LoopState()
    guard = Guard(loop, task, what, on_signal)
    state.guards.add(guard)
    return guard


def _on_sigterm(loop: asyncio.AbstractEventLoop) -> None:
    state = _states.get(loop)
    if state is None:
        return
    if state.received:
        log.warning("SIGTERM again: exiting without waiting for the pools")
        loop.remove_signal_handler(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        return
    state.received = True
    pools = ", ".join(sorted(repr(g.what) for g in state.guards))
    log.warning("SIGTERM: leaving %s (SIGTERM again to exit at once)", pools)
    for guard in state.guards:
        guard.on_signal()
        guard.task.cancel("SIGTERM")
