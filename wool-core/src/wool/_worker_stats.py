"""A worker's counts of calls: running now, and completed since it started."""

from __future__ import annotations

import attrs


@attrs.define
class WorkerStats:
    """Counted by the worker lifecycle; read by the ``Stats`` RPC (``wool workers --watch``)."""

    running: int = 0
    """Calls that started and have not ended yet."""
    completed: int = 0
    """Calls that ended (returned, raised, were cancelled or closed)."""

    def started(self) -> None:
        """A call started."""
        self.running += 1

    def stopped(self) -> None:
        """A call that started has ended."""
        self.running -= 1
        self.completed += 1
