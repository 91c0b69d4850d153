"""Spawning and stopping local worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys

import shortuuid

from wool import _unix_socket
from wool._credentials import WorkerCredentials
from wool._metadata import WorkerMetadata
from wool._worker import WorkerConfig, encode_config

log = logging.getLogger("wool.pool")

START_TIMEOUT = 60.0
KILL_MARGIN = 5.0


class LocalWorker:
    """A worker process this process started and is responsible for stopping."""

    def __init__(
        self,
        *,
        tags: frozenset[str] = frozenset(),
        host: str | None = None,
        port: int = 0,
        advertise: str | None = None,
        credentials: WorkerCredentials | None = None,
        insecure: bool = False,
    ) -> None:
        self.tags = tags
        self.insecure = insecure
        self.host = host
        self.port = port
        self.advertise = advertise
        self.credentials = credentials
        self.uid = f"worker-{shortuuid.uuid()[:12]}"
        self.metadata: WorkerMetadata | None = None
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = START_TIMEOUT) -> WorkerMetadata:
        """Spawn the process and wait until its server is up."""
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wool._worker_process",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        assert self.process.stdin is not None
        config = WorkerConfig(
            tags=self.tags,
            host=self.host,
            credentials=self.credentials,
            sys_path=tuple(p for p in sys.path if p),
            uid=self.uid,
            port=self.port,
            advertise=self.advertise,
            log_level=logging.getLogger("wool").getEffectiveLevel(),
            insecure=self.insecure,
        )
        try:
            self.process.stdin.write(encode_config(config))
            async with asyncio.timeout(timeout):
                await self.process.stdin.drain()
                handshake = await _read_to_end(read_fd)
            if not handshake:
                code = await self.process.wait()
                raise RuntimeError(
                    f"worker process {self.process.pid} exited with code {code} before it "
                    "started serving (its error output is above)"
                )
            self.metadata = WorkerMetadata.from_dict(json.loads(handshake))
            return self.metadata
        except BaseException:
            await self.stop(grace=0)
            raise

    async def stop(self, grace: float) -> None:
        """Ask the worker to stop within ``grace`` seconds; kill it if it does not."""
        process = self.process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(f"stop {grace}\n".encode())
                process.stdin.close()
        try:
            async with asyncio.timeout(grace + KILL_MARGIN):
                await process.wait()
        except TimeoutError:
            log.warning(
                "worker %s (pid %s) did not stop in time; killing it", self.uid, process.pid
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await process.stdin.wait_closed()
            _remove_socket(self.metadata)


def _remove_socket(metadata: WorkerMetadata | None) -> None:
    """Remove the unix socket of a worker that is gone (killed before it could)."""
    path = _unix_socket.path_of(metadata.address) if metadata is not None else None
    if path is not None:
        _unix_socket.remove(path)


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
