"""Keeping workers that cannot be connected to out of the load balancer's way.

A worker whose connection or TLS handshake fails (a dead address, a host that is not a
wool worker, a certificate this caller does not trust: anyone on the network can
publish such records) is paused: the load balancer no longer sees it, and calls never
wait on it again. In the background its connection is tried again after a pause that
doubles with each failure; it comes back once a connection succeeds. A worker that
refuses a call with a gRPC status is reachable and is not paused (the load balancer
decides about it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from wool._connection import RemoteCall, WorkerConnection
from wool._errors import DispatchError

if TYPE_CHECKING:
    from wool._credentials import WorkerCredentials
    from wool._metadata import WorkerMetadata
    from wool._task import Task

log = logging.getLogger("wool.proxy")

FIRST_PAUSE = 1.0
MAX_PAUSE = 60.0
"""Seconds before a paused worker's connection is tried again: FIRST_PAUSE, doubling
with each failed try up to MAX_PAUSE."""
PROBE_TIMEOUT = 10.0
"""How long one background try may take to connect."""


class Pauses:
    """The paused workers and their background connection tries; ``changed()`` is
    called whenever a worker is paused or comes back."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._pause: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}

    def paused(self, uid: str) -> bool:
        """Whether ``uid`` is paused."""
        return uid in self._pause

    def failed(self, connection: PausingConnection) -> None:
        """``connection`` could not connect: pause its worker (again, twice as long)."""
        uid = connection.metadata.uid
        pause = min(self._pause.get(uid, FIRST_PAUSE / 2) * 2, MAX_PAUSE)
        first = uid not in self._pause
        self._pause[uid] = pause
        self._cancel(uid)
        loop = asyncio.get_running_loop()
        self._timers[uid] = loop.call_later(pause, self._probe, connection)
        log.info("cannot connect to worker %s; trying again in %gs", uid, pause)
        if first:
            self._changed()

    def reached(self, uid: str) -> None:
        """``uid`` accepted a call or a connection: it is not paused."""
        if self.forget(uid):
            self._changed()

    def forget(self, uid: str) -> bool:
        """Stop pausing and trying ``uid``; whether it was paused."""
        self._cancel(uid)
        return self._pause.pop(uid, None) is not None

    def close(self) -> None:
        """Forget every worker."""
        for uid in list(self._pause):
            self.forget(uid)

    def _cancel(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        probe = self._probes.pop(uid, None)
        if probe is not None and probe is not asyncio.current_task():
            probe.cancel()

    def _probe(self, connection: PausingConnection) -> None:
        uid = connection.metadata.uid
        self._timers.pop(uid, None)
        self._probes[uid] = asyncio.get_running_loop().create_task(self._try(connection))

    async def _try(self, connection: PausingConnection) -> None:
        uid = connection.metadata.uid
        connected = await connection.connect(PROBE_TIMEOUT)
        if self._probes.get(uid) is not asyncio.current_task():
            return  # forgotten meanwhile
        del self._probes[uid]
        if connected:
            self.reached(uid)
        else:
            self.failed(connection)


class PausingConnection(WorkerConnection):
    """A worker connection that tells ``pauses`` about failed connections and accepted
    calls."""

    def __init__(
        self, metadata: WorkerMetadata, credentials: WorkerCredentials | None, pauses: Pauses
    ) -> None:
        super().__init__(metadata, credentials)
        self._pauses = pauses

    async def dispatch(self, task: Task) -> RemoteCall:
        try:
            call = await super().dispatch(task)
        except DispatchError:
            if not self._connected():
                self._pauses.failed(self)
            raise
        self._pauses.reached(self.metadata.uid)
        return call

    async def connect(self, timeout: float) -> bool:
        """Whether one attempt to connect to the worker (TLS handshake included)
        succeeds within ``timeout`` seconds. A failed attempt closes the channel, so that
        gRPC does not keep retrying it on its own."""
        if self._closed:
            return False
        if self._channel is None:
            self._channel = self._open_channel()
        channel = self._channel
        states = grpc.ChannelConnectivity
        connected = False
        try:
            async with asyncio.timeout(timeout):
                state = channel.get_state(try_to_connect=True)
                tried = state is states.CONNECTING
                while state is not states.READY:
                    if state is states.SHUTDOWN or (tried and state is states.TRANSIENT_FAILURE):
                        break
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
                    tried = tried or state is states.CONNECTING
                connected = state is states.READY
        except TimeoutError:
            pass
        session = self._session
        idle = session is None or session.broken is not None
        if not connected and self._channel is channel and idle:
            self._channel, self._session = None, None
            await channel.close()
        return connected

    def _connected(self) -> bool:
        channel = self._channel
        if channel is None:
            return False
        return channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY
