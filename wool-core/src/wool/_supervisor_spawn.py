"""The spawn protocol, both ends: how a parent starts, watches and stops a worker process.

1. The parent runs ``python -m wool._supervisor_child FD`` and writes the
   :class:`WorkerConfig` to its stdin, pickled behind an ``!Q`` length prefix.
2. The worker starts serving and writes its metadata as JSON to file descriptor ``FD``
   (the handshake), then closes it.
3. To stop it the parent writes a ``stop GRACE`` line and closes stdin. End of file on
   stdin without that line means the parent is gone: the worker stops at once.

The worker's stderr flows through the parent, which keeps its last lines to explain a
worker that could not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import struct
import sys

import attrs
import shortuuid

from wool import _unix_socket
from wool._credentials import WorkerCredentials
from wool._metadata import WorkerMetadata
from wool._settings import Settings, current
from wool._supervisor_stderr import StderrTail

log = logging.getLogger("wool.pool")

_LENGTH = struct.Struct("!Q")
STOP = b"stop"


@attrs.frozen
class WorkerConfig:
    """What a parent tells a worker process it spawns."""

    tags: frozenset[str]
    host: str | None
    """``None``: a unix socket in this user's private directory."""
    credentials: WorkerCredentials | None
    sys_path: tuple[str, ...]
    uid: str
    settings: Settings
    grace: float
    """How long running tasks get to finish when the worker itself receives SIGTERM."""
    port: int = 0
    advertise: str | None = None
    log_level: int = logging.WARNING
    concurrency: int | None = None
    """The most calls the worker runs at once (None: unbounded)."""
    insecure: bool = False


class WorkerStartError(RuntimeError):
    """A spawned worker process exited, or timed out, before it started serving."""


# -- the worker's end --------------------------------------------------------------------


def encode_config(config: WorkerConfig) -> bytes:
    """Length-prefixed pickle of ``config``, as the worker reads it from stdin."""
    data = pickle.dumps(config)
    return _LENGTH.pack(len(data)) + data


def read_config(fd: int = 0) -> WorkerConfig:
    """The configuration the parent wrote to ``fd`` (blocking: the worker has nothing else
    to do yet)."""
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    config = pickle.loads(_read_exactly(fd, size))
    if not isinstance(config, WorkerConfig):
        raise TypeError(f"expected a WorkerConfig on stdin, got {type(config).__name__}")
    return config


def send_handshake(fd: int, metadata: WorkerMetadata) -> bool:
    """Tell the parent we serve; False if it no longer listens."""
    try:
        with os.fdopen(fd, "w") as handshake:
            handshake.write(json.dumps(metadata.to_dict()))
    except BrokenPipeError:
        return False
    return True


async def stop_request(reader: asyncio.StreamReader) -> float:
    """Wait for the parent's ``stop GRACE`` line; 0 when stdin ends without one."""
    while line := await reader.readline():
        words = line.split()
        if words[:1] == [STOP] and len(words) == 2:
            with contextlib.suppress(ValueError):
                return max(0.0, float(words[1]))
        log.warning("ignoring a malformed line from the parent process: %r", line[:80])
    return 0.0


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            raise EOFError("parent closed stdin before sending the worker configuration")
        chunks += chunk
    return bytes(chunks)


# -- the parent's end --------------------------------------------------------------------


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: ``exited with code 3``, ``was killed by SIGKILL``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    verb = "was stopped by" if -returncode in (signal.SIGTERM, signal.SIGINT) else "was killed by"
    return f"{verb} {name}"


@attrs.frozen
class WorkerSpec:
    """How to start one worker: everything but its uid."""

    tags: frozenset[str] = frozenset()
    host: str | None = None
    port: int = 0
    advertise: str | None = None
    credentials: WorkerCredentials | None = None
    concurrency: int | None = None
    insecure: bool = False


class WorkerProcess:
    """A worker process this process started and is responsible for stopping."""

    def __init__(
        self,
        *,
        tags: frozenset[str] = frozenset(),
        host: str | None = None,
        port: int = 0,
        advertise: str | None = None,
        credentials: WorkerCredentials | None = None,
        settings: Settings | None = None,
        grace: float | None = None,
        concurrency: int | None = None,
        insecure: bool = False,
    ) -> None:
        self.spec = WorkerSpec(
            tags, host, port, advertise, credentials, concurrency=concurrency, insecure=insecure
        )
        self.settings = settings or current()
        self.grace = self.settings.pool_grace if grace is None else grace
        self.uid = f"worker-{shortuuid.ShortUUID().uuid()[:12]}"
        self.metadata: WorkerMetadata | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.started_at: float | None = None
        """Loop time at which the worker started serving."""
        self.stop_requested = False
        self._stderr: StderrTail | None = None

    @classmethod
    def of(cls, spec: WorkerSpec, settings: Settings, grace: float) -> WorkerProcess:
        """A worker to start as ``spec`` says."""
        return cls(
            tags=spec.tags,
            host=spec.host,
            port=spec.port,
            advertise=spec.advertise,
            credentials=spec.credentials,
            settings=settings,
            grace=grace,
            concurrency=spec.concurrency,
            insecure=spec.insecure,
        )

    @property
    def tags(self) -> frozenset[str]:
        return self.spec.tags

    @property
    def running(self) -> bool:
        """The process has been started and has not exited."""
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float | None = None) -> WorkerMetadata:  # noqa: ASYNC109 (WorkerStartError names the limit)
        """Spawn the process and wait until its server is up; :class:`WorkerStartError` if
        it exits or takes longer than ``timeout`` (default: the start timeout setting)."""
        timeout = self.settings.start_timeout if timeout is None else timeout
        read_fd, write_fd = os.pipe()
        stderr_read, stderr_write = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # no current directory in front of sys.path: the config sets it
                "-m",
                "wool._supervisor_child",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                stderr=stderr_write,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            os.close(stderr_read)
            raise
        finally:
            os.close(write_fd)
            os.close(stderr_write)
        assert self.process.stdin is not None
        self._stderr = StderrTail(stderr_read, self.settings.stderr_tail_lines)
        spec = self.spec
        config = WorkerConfig(
            tags=spec.tags,
            host=spec.host,
            credentials=spec.credentials,
            # "" (python -c, a REPL) is the current directory: name it, as the worker
            # runs with -P and takes this sys.path as it is.
            sys_path=tuple(p or os.getcwd() for p in sys.path),
            uid=self.uid,
            settings=self.settings,
            grace=self.grace,
            port=spec.port,
            advertise=spec.advertise,
            log_level=logging.getLogger("wool").getEffectiveLevel(),
            concurrency=spec.concurrency,
            insecure=spec.insecure,
        )
        try:
            self.process.stdin.write(encode_config(config))
            try:
                async with asyncio.timeout(timeout):
                    await self.process.stdin.drain()
                    handshake = await _read_to_end(read_fd)
            except TimeoutError:
                self.kill()
                await self.process.wait()
                raise WorkerStartError(
                    f"worker process {self.process.pid} did not start serving within "
                    f"{timeout:g} s{await self._tail_text()}"
                ) from None
            except ConnectionError:
                handshake = b""
            if not handshake:
                code = await self.process.wait()
                raise WorkerStartError(
                    f"worker process {self.process.pid} {describe_exit(code)} before it "
                    f"started serving{await self._tail_text()}"
                )
            self.metadata = WorkerMetadata.from_dict(json.loads(handshake))
            self.started_at = asyncio.get_running_loop().time()
            return self.metadata
        except BaseException:
            await self.stop(grace=0)
            raise

    async def stop(self, grace: float) -> None:
        """Ask the worker to stop within ``grace`` seconds; kill it if it does not."""
        process = self.process
        if process is None:
            return
        self.stop_requested = True
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(STOP + f" {grace}\n".encode())
                process.stdin.close()
        try:
            async with asyncio.timeout(grace + self.settings.kill_margin):
                await process.wait()
        except TimeoutError:
            log.warning(
                "worker %s (pid %s) did not stop within its grace of %g s; killing it",
                self.uid,
                process.pid,
                grace,
            )
            self.kill()
            await process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await process.stdin.wait_closed()
            await self._end_pump()
            self._remove_socket()

    def kill(self) -> None:
        """SIGKILL the process now (a second stop signal, a worker past its grace)."""
        self.stop_requested = True
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def wait(self) -> int:
        """Wait until the process exited; its return code (negative: killed by a signal)."""
        assert self.process is not None
        code = await self.process.wait()
        await self._end_pump()
        self._remove_socket()
        return code

    def _remove_socket(self) -> None:
        """Remove the unix sockets of an exited worker (one killed could not do it)."""
        path = _unix_socket.path_of(self.metadata.address) if self.metadata is not None else None
        if path is not None:
            _unix_socket.remove_worker(path)

    def tail(self) -> str:
        """The last lines the worker wrote to stderr, indented, or ``""``."""
        return self._stderr.text() if self._stderr is not None else ""

    async def _tail_text(self) -> str:
        await self._end_pump()
        tail = self.tail()
        if not tail:
            return " (it wrote nothing to stderr)"
        return f"; the last lines of its error output:{tail}"

    async def _end_pump(self) -> None:
        """Let the copy of stderr reach end of file (the process has exited or will)."""
        if self._stderr is not None:
            await self._stderr.ended(self.settings.kill_margin)


async def _read_to_end(fd: int) -> bytes:
    """Read a pipe until end of file without blocking the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()
