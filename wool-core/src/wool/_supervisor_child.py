"""The entry point of a spawned worker process (imported by nothing else).

``python -m wool._supervisor_child FD`` speaks the worker's end of the spawn protocol
(:mod:`wool._supervisor_spawn`): it reads its configuration, serves, and stops on the parent's
``stop GRACE`` line, at once when the parent is gone, or on SIGTERM with the configured
grace. Stopped by SIGTERM, it exits by that signal, so its parent can tell what happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from wool import _import_path, _settings
from wool._supervisor_spawn import WorkerConfig, read_config, send_handshake, stop_request
from wool._worker_logging import configure_worker_logging
from wool._worker_open_files import raise_open_file_limit
from wool._worker_server import WorkerServer

log = logging.getLogger("wool.worker")


def main(argv: list[str]) -> int:
    """Entry point of a spawned worker process."""
    handshake_fd = int(argv[0])
    config = read_config(0)
    _settings.install(config.settings)
    _import_path.adopt(config.sys_path)
    raise_open_file_limit()
    configure_worker_logging(config.log_level, config.uid)
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopped_by = asyncio.run(_serve(config, handshake_fd))
    if stopped_by is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(stopped_by, signal.SIG_DFL)
        os.kill(os.getpid(), stopped_by)
    return 0


async def _serve(config: WorkerConfig, handshake_fd: int) -> signal.Signals | None:
    """Serve until told to stop; the signal that stopped us, if one did."""
    loop = asyncio.get_running_loop()
    worker = WorkerServer(
        tags=config.tags,
        host=config.host,
        port=config.port,
        credentials=config.credentials,
        uid=config.uid,
        advertise=config.advertise,
        concurrency=config.concurrency,
        insecure=config.insecure,
    )
    metadata = await worker.start()
    if not send_handshake(handshake_fd, metadata):  # the parent gave up on us meanwhile
        await worker.stop(0)
        return None
    stop: asyncio.Future[tuple[float, signal.Signals | None]] = loop.create_future()

    def on_sigterm() -> None:
        if not stop.done():
            stop.set_result((config.grace, signal.SIGTERM))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )

    async def watch_parent() -> None:
        grace = await stop_request(reader)
        if not stop.done():
            stop.set_result((grace, None))

    watcher = loop.create_task(watch_parent())
    try:
        grace, sig = await stop
        if sig is not None:
            log.info("%s: stopping worker %s (grace %g s)", sig.name, metadata.uid, grace)
        await worker.stop(grace)
        return sig
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        transport.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
