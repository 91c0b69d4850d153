"""The entry point of a spawned worker process (imported by nothing else).

``python -m wool._worker_process FD`` reads a length-prefixed pickled
:class:`~wool._worker.WorkerConfig` from stdin, starts a worker, writes its metadata as
JSON to file descriptor ``FD``, then waits on stdin: a ``stop GRACE`` line, end of file
(the parent died) or SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import signal
import struct
import sys

from wool._worker import Worker, WorkerConfig


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            raise EOFError("parent closed stdin before sending the worker configuration")
        chunks += chunk
    return bytes(chunks)


def main(argv: list[str]) -> int:
    """Entry point of a spawned worker process."""
    handshake_fd = int(argv[0])
    (size,) = struct.unpack("!Q", _read_exactly(0, 8))
    config: WorkerConfig = pickle.loads(_read_exactly(0, size))
    for entry in reversed(config.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    logging.basicConfig(level=config.log_level, format="wool worker %(process)d: %(message)s")
    # Ctrl-C reaches the whole process group; the parent pool decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(config, handshake_fd))
    return 0


async def _serve(config: WorkerConfig, handshake_fd: int) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(
        tags=config.tags,
        host=config.host,
        port=config.port,
        credentials=config.credentials,
        uid=config.uid,
        advertise=config.advertise,
        insecure=config.insecure,
    )
    metadata = await worker.start()
    try:
        with os.fdopen(handshake_fd, "w") as handshake:
            handshake.write(json.dumps(metadata.to_dict()))
    except BrokenPipeError:  # the parent gave up on us while we started
        await worker.stop(0)
        return
    grace: asyncio.Future[float] = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, _resolve, grace, 2.0)
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    watcher = loop.create_task(_watch_parent(reader, grace))
    try:
        await worker.stop(await grace)
    finally:
        watcher.cancel()
        transport.close()


def _resolve(future: asyncio.Future[float], value: float) -> None:
    if not future.done():
        future.set_result(value)


async def _watch_parent(reader: asyncio.StreamReader, grace: asyncio.Future[float]) -> None:
    while line := await reader.readline():
        words = line.split()
        if words[:1] == [b"stop"]:
            _resolve(grace, float(words[1]) if len(words) > 1 else 2.0)
            return
    _resolve(grace, 0.0)  # end of file: the parent is gone


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
