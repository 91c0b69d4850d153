"""Network namespaces that LAN tests create, so that no multicast reaches a real interface.

- :func:`loopback_namespace`: a namespace with only ``lo`` (up, multicast on, with a
  route for 224.0.0.0/4), for the single-host LAN tests.
- :func:`network`: hosts joined by a bridge. The bridge lives in a namespace of its own
  (the "switch"); each host namespace has one veth ``eth0`` with an address in
  198.18.0.0/24 whose peer is a port of the bridge. Nothing is created in the root
  namespace.

Every namespace is named ``wooltest-<run>-<n>...`` and deleted on exit, also when the
test fails (deleting a namespace deletes its veths and bridge). ``Namespace.entered()``
moves the calling thread into a namespace for a while (sockets opened meanwhile stay in
it); ``Namespace.command()`` prefixes a command with ``ip netns exec``.

These need root and iproute2; :func:`unavailable` says why they cannot run, for a skip.
:func:`spawn` runs a helper program (in a namespace) that talks JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "wooltest-"
RUN = f"{PREFIX}{uuid.uuid4().hex[:6]}"
"""The prefix of every namespace this test run creates."""
SUBNET = "198.18.0"
MULTICAST = "224.0.0.0/4"
_CLONE_NEWNET = 0x40000000
_counter = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why network namespaces cannot be created here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "LAN tests create network namespaces, which needs root"
    if shutil.which("ip") is None:
        return "LAN tests need the 'ip' command (iproute2)"
    name = f"{RUN}-probe{next(_counter)}"
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if result.returncode != 0:
        return f"cannot create a network namespace: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    return None


def ip(*args: str, namespace: str | None = None) -> str:
    """Run ``ip [-n namespace] args``; raise with its error output if it fails."""
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def namespaces(prefix: str = PREFIX) -> list[str]:
    """The names of the existing network namespaces that start with ``prefix``."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    names = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(prefix)]


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _current() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@attrs.frozen
class Namespace:
    """A network namespace this test run created."""

    name: str

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.name

    def ip(self, *args: str) -> str:
        """Run ``ip`` inside this namespace."""
        return ip(*args, namespace=self.name)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into this namespace until the block ends.

        Sockets opened in the block belong to this namespace for their whole life; threads
        started elsewhere (and the rest of this process) are not affected.
        """
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(self.path, os.O_RDONLY)
        home = _current()
        try:
            _setns(target)
            if _current() != os.fstat(target).st_ino:
                raise RuntimeError(f"setns did not enter {self.name}")
            try:
                yield
            finally:
                _setns(original)
                if _current() != home:  # pragma: no cover - would leak a namespace
                    raise RuntimeError(f"could not leave {self.name}")
        finally:
            os.close(target)
            os.close(original)


def _create(suffix: str) -> Namespace:
    namespace = Namespace(f"{RUN}-{next(_counter)}{suffix}")
    ip("netns", "add", namespace.name)
    namespace.ip("link", "set", "lo", "up")
    return namespace


def _delete(namespace: Namespace) -> None:
    subprocess.run(["ip", "netns", "delete", namespace.name], capture_output=True, check=False)


@contextlib.contextmanager
def loopback_namespace() -> Iterator[Namespace]:
    """A namespace whose only interface is ``lo``, with multicast enabled on it."""
    namespace = _create("lo")
    try:
        namespace.ip("link", "set", "lo", "multicast", "on")
        namespace.ip("route", "add", MULTICAST, "dev", "lo")
        yield namespace
    finally:
        _delete(namespace)


@attrs.frozen
class Host:
    """A host of a :class:`Network`: a namespace whose ``eth0`` is plugged into the switch."""

    name: str
    namespace: Namespace
    address: str
    port: str  # the bridge port (in the switch namespace) that eth0 is wired to

    def command(self, *argv: str) -> list[str]:
        return self.namespace.command(*argv)


@attrs.frozen
class Network:
    """Hosts on one Ethernet segment (a bridge in the switch namespace)."""

    switch: Namespace
    hosts: dict[str, Host]

    def unplug(self, host: str) -> None:
        """Pull the host's cable: its bridge port goes down, so nothing reaches it."""
        self.switch.ip("link", "set", self.hosts[host].port, "down")

    def plug(self, host: str) -> None:
        self.switch.ip("link", "set", self.hosts[host].port, "up")


@contextlib.contextmanager
def network(*names: str) -> Iterator[Network]:
    """Hosts ``names`` (addresses 198.18.0.1, .2, ... in order) joined by a bridge."""
    created: list[Namespace] = []
    try:
        switch = _create("sw")
        created.append(switch)
        switch.ip("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        switch.ip("link", "set", "br0", "up")
        hosts: dict[str, Host] = {}
        for index, name in enumerate(names, start=1):
            namespace = _create(f"h{index}")
            created.append(namespace)
            port = f"port{index}"
            switch.ip(
                "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                namespace.name,
            )  # fmt: skip
            switch.ip("link", "set", port, "master", "br0")
            switch.ip("link", "set", port, "up")
            address = f"{SUBNET}.{index}"
            namespace.ip("addr", "add", f"{address}/24", "dev", "eth0")
            namespace.ip("link", "set", "eth0", "up")
            namespace.ip("route", "add", MULTICAST, "dev", "eth0")
            hosts[name] = Host(name, namespace, address, port)
        yield Network(switch, hosts)
    finally:
        for namespace in reversed(created):
            _delete(namespace)


class Process:
    """A helper program started by :func:`spawn`, printing JSON lines.

    Lines that answer a :meth:`request` (they echo its ``"id"``) go to that request;
    :meth:`line` returns the others in order. Several requests can be pending at once.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[Any]] = {}
        self._lines: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            ident = message.get("id") if isinstance(message, dict) else None
            answer = self._answers.pop(ident, None) if ident is not None else None
            if answer is not None:
                if not answer.done():
                    answer.set_result(message)
            else:
                self._lines.put_nowait(message)
        code = await self.process.wait()
        ended = RuntimeError(f"process {self.pid} exited with {code} (its stderr is above)")
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(ended)
        self._lines.put_nowait(ended)

    async def line(self, timeout: float = 60) -> Any:  # noqa: ASYNC109 (a default for every caller)
        """The next JSON line the program prints on its own; fails after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            message = await self._lines.get()
        if isinstance(message, BaseException):
            self._lines.put_nowait(message)
            raise message
        return message

    async def request(self, op: str, *, within: float = 90, **fields: Any) -> Any:
        """Send ``{"op": op, "id": ..., **fields}``; the answer, within ``within`` s."""
        assert self.process.stdin is not None
        ident = next(self._ids)
        answer = self._answers[ident] = asyncio.get_running_loop().create_future()
        if self._reader.done():
            raise RuntimeError(f"process {self.pid} has exited")
        self.process.stdin.write(json.dumps({"op": op, "id": ident, **fields}).encode() + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(within):
            return await answer

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def spawn(argv: list[str], env: dict[str, str] | None = None) -> AsyncIterator[Process]:
    """Start ``argv`` (stdin and stdout piped, in the repository root, with this process's
    import path); on exit close its stdin, wait up to 30 s, then kill it."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *(p for p in sys.path if p)]),
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=environment,
    )
    helper = Process(process)
    try:
        yield helper
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        await helper.close()
