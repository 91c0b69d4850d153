"""Keeping workers that cannot be connected to out of the load balancer's way for a while.

A worker whose connection or TLS handshake fails (a dead address, a host that is not a
wool worker, a certificate this caller does not trust: anyone on the network can
publish such records) is paused for a doubling time instead of being dialled again by
every call. A worker that refuses a call with a gRPC status is reachable and is not
paused (the load balancer decides about it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from wool._connection import RemoteCall, WorkerConnection
from wool._errors import DispatchError

if TYPE_CHECKING:
    from wool._credentials import WorkerCredentials
    from wool._metadata import WorkerMetadata
    from wool._task import Task

FIRST_PAUSE = 1.0
MAX_PAUSE = 60.0
"""Seconds a worker is left out after a failed connection: FIRST_PAUSE, doubling with
each further failure up to MAX_PAUSE, back to nothing after a call it accepts."""


class Pauses:
    """Which workers are paused after failed connections, and until when."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._pause: dict[str, float] = {}

    def failed(self, uid: str) -> float:
        """Pause ``uid`` (twice as long as last time); returns the pause in seconds."""
        pause = min(self._pause.get(uid, FIRST_PAUSE / 2) * 2, MAX_PAUSE)
        self._pause[uid] = pause
        self._until[uid] = time.monotonic() + pause
        return pause

    def forget(self, uid: str) -> bool:
        """End ``uid``'s pauses; whether it had any."""
        self._until.pop(uid, None)
        return self._pause.pop(uid, None) is not None

    def paused(self, uid: str, now: float) -> bool:
        """Whether ``uid`` is paused at ``now`` (``time.monotonic()``)."""
        return self._until.get(uid, 0.0) > now

    def next_end(self, now: float) -> float:
        """When the next pause running at ``now`` ends (``inf`` when none runs)."""
        return min((until for until in self._until.values() if until > now), default=float("inf"))


class PausingConnection(WorkerConnection):
    """A worker connection that reports failed connections and accepted calls to
    ``report(uid, reachable)``."""

    def __init__(
        self,
        metadata: WorkerMetadata,
        credentials: WorkerCredentials | None,
        report: Callable[[str, bool], None],
    ) -> None:
        super().__init__(metadata, credentials)
        self._report = report

    async def dispatch(self, task: Task) -> RemoteCall:
        try:
            call = await super().dispatch(task)
        except DispatchError:
            if not self._connected():
                self._report(self.metadata.uid, False)
            raise
        self._report(self.metadata.uid, True)
        return call

    def _connected(self) -> bool:
        channel = self._channel
        if channel is None:
            return False
        return channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY
