"""Keeping workers that cannot be connected to out of the load balancer's way.

A worker whose connection or TLS handshake fails (a dead address, a host that is not a
wool worker, a certificate this caller does not trust: anyone on the network can
publish such records) is paused, with every worker that claims the same address: the
load balancer no longer sees them, and calls never wait on them again. In the
background the address is tried again after a pause that doubles with each failure
(at most PROBE_RATE tries a second in all, HOST_PROBE_RATE per host); its workers come
back once a connection succeeds. Once an address of a host is paused, a new worker
announced there starts paused and is tried in the background first: a flood of fake
workers costs the caller's calls one failed connection per host, and its background
tries a few handshakes a second however many fakes the host announces. A worker that
refuses a call with a gRPC status is reachable and is not paused (the load balancer
decides about it).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from wool._caller_connection import CallerConnection, RemoteCall
from wool._errors import DispatchError
from wool._metadata import UNIX_PREFIX

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
PROBE_RATE = 20.0
"""Background tries started per second at most (per pool), however many addresses are
paused: each costs a connection and a TLS handshake."""
HOST_PROBE_RATE = 2.0
"""Background tries per second that the paused addresses of one host get on average: with
N of them paused, each is tried again (N - 1) / HOST_PROBE_RATE seconds later at the
soonest."""
SUSPECT_HOST = 1
"""Paused addresses on one host after which a new worker announced on that host starts
paused, tried in the background before any call waits on it."""


class Pauses:
    """The paused addresses and their background connection tries; ``changed()`` is
    called whenever an address is paused or comes back."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._pause: dict[str, float] = {}
        self._hosts: collections.Counter[str] = collections.Counter()  # paused addresses
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._slots: dict[str, int] = {}  # address -> the slot of its next try
        self._taken: set[int] = set()  # slots (1 / PROBE_RATE s each, loop time) taken

    def paused(self, address: str) -> bool:
        """Whether the workers at ``address`` are paused."""
        return address in self._pause

    def hold(self, connection: PausingConnection, others_work: bool) -> bool:
        """Whether a call must not go to ``connection`` now: its address is paused, or
        (when ``others_work``: some other worker took calls) it never connected and its
        host has several paused addresses; then it is paused and tried in the
        background first."""
        address = connection.metadata.address
        if address in self._pause:
            return True
        host = connection.metadata.host
        if not host or not others_work or connection.connected_once:
            return False  # a unix socket is this user's own: no host to suspect
        if self._hosts[host] < SUSPECT_HOST:
            return False
        self._pause[address] = FIRST_PAUSE / 2
        self._hosts[host] += 1
        self._schedule(connection, 0.0)
        self._changed()
        return True

    def failed(self, connection: PausingConnection) -> None:
        """``connection`` could not connect: pause its address (again, twice as long)."""
        address = connection.metadata.address
        pause = min(self._pause.get(address, FIRST_PAUSE / 2) * 2, MAX_PAUSE)
        first = address not in self._pause
        self._pause[address] = pause
        if first:
            self._hosts[connection.metadata.host] += 1
        self._cancel(address)
        self._schedule(connection, pause)
        log.info(
            "cannot connect to worker %s at %s; trying again in %gs",
            connection.metadata.uid,
            address,
            pause,
        )
        if first:
            self._changed()

    def reached(self, address: str) -> None:
        """A worker at ``address`` accepted a call or a connection: it is not paused."""
        if self._forget(address):
            self._changed()

    def close(self) -> None:
        """Forget every address."""
        for address in list(self._pause):
            self._forget(address)

    def _forget(self, address: str) -> bool:
        self._cancel(address)
        if self._pause.pop(address, None) is None:
            return False
        host = _host(address)
        self._hosts[host] -= 1
        if self._hosts[host] <= 0:
            del self._hosts[host]
        return True

    def _cancel(self, address: str) -> None:
        slot = self._slots.pop(address, None)
        if slot is not None:
            self._taken.discard(slot)
        timer = self._timers.pop(address, None)
        if timer is not None:
            timer.cancel()
        probe = self._probes.pop(address, None)
        if probe is not None and probe is not asyncio.current_task():
            probe.cancel()

    def _schedule(self, connection: PausingConnection, delay: float) -> None:
        """Try ``connection`` in ``delay`` seconds, or later: a host's tries keep
        HOST_PROBE_RATE on average, and all tries keep PROBE_RATE (each in a slot of its
        own)."""
        loop = asyncio.get_running_loop()
        host = connection.metadata.host
        if host:
            delay = max(delay, (self._hosts[host] - 1) / HOST_PROBE_RATE)
        slot = math.ceil((loop.time() + delay) * PROBE_RATE)
        while slot in self._taken:
            slot += 1
        address = connection.metadata.address
        self._taken.add(slot)
        self._slots[address] = slot
        self._timers[address] = loop.call_at(slot / PROBE_RATE, self._probe, connection)

    def _probe(self, connection: PausingConnection) -> None:
        address = connection.metadata.address
        self._timers.pop(address, None)
        self._taken.discard(self._slots.pop(address, -1))
        task = asyncio.get_running_loop().create_task(self._try(connection))
        self._probes[address] = task

    async def _try(self, connection: PausingConnection) -> None:
        address = connection.metadata.address
        connected = await connection.connect(PROBE_TIMEOUT)
        if self._probes.get(address) is not asyncio.current_task():
            return  # forgotten meanwhile
        del self._probes[address]
        if connected or connection.closed:
            # a closed connection's worker left: any other at this address gets tried
            # on a call again (and paused again if it fails)
            self.reached(address)
        else:
            self.failed(connection)


def _host(address: str) -> str:
    """The host of a worker ``address`` as ``WorkerMetadata.host`` says it."""
    if address.startswith(UNIX_PREFIX):
        return ""
    return address.rpartition(":")[0].strip("[]")


class PausingConnection(CallerConnection):
    """A worker connection that tells ``pauses`` about failed connections and accepted
    calls."""

    def __init__(
        self,
        metadata: WorkerMetadata,
        credentials: WorkerCredentials | None,
        pauses: Pauses,
        *,
        socket_sessions: bool = True,
    ) -> None:
        super().__init__(metadata, credentials, socket_sessions=socket_sessions)
        self._pauses = pauses
        self.connected_once = False
        """Whether a call or a background try ever got through to the worker."""

    async def dispatch(
        self, task: Task, *, patient: bool = False, standby: bool = False
    ) -> RemoteCall:
        try:
            call = await super().dispatch(task, patient=patient, standby=standby)
        except DispatchError:
            if not self._connected():
                self._pauses.failed(self)
                await self._hang_up()
            raise
        self.connected_once = True
        self._pauses.reached(self.metadata.address)
        return call

    @property
    def closed(self) -> bool:
        """Whether the proxy closed this connection (its worker left)."""
        return self._closed

    async def connect(self, timeout: float) -> bool:  # noqa: ASYNC109 (the answer is whether one attempt succeeds within it)
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
        if connected:
            self.connected_once = True
        else:
            await self._hang_up()
        return connected

    async def _hang_up(self) -> None:
        """Close the channel after a failed connection (unless a session on it works):
        left open, gRPC would keep dialling the address on its own."""
        channel, session = self._channel, self._session
        if channel is None or (session is not None and session.broken is None):
            return
        self._channel, self._session = None, None
        await channel.close()

    def _connected(self) -> bool:
        session = self._session
        if session is not None and session.established:  # on either transport
            return True
        channel = self._channel
        if channel is None:
            return False
        return channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY
