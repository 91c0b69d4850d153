"""The load part of ``wool workers --watch``: ask each worker for its counts of calls.

Each worker answers the ``Stats`` RPC with the load report its batches carry to callers
(``wool._worker_load``): the calls running on it now and those it completed since it
started; a line (or JSON object) is printed whenever they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType

import grpc
import grpc.aio

from wool._cli_common import say, warn
from wool._log_limit import printable
from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._transport import CHANNEL_OPTIONS
from wool._wire import worker_pb2 as pb

STATS_METHOD = "/wool.v1.Worker/Stats"
ANSWER_SECONDS = 2.0
"""How long one worker may take to answer before its load shows as unknown."""


class LoadWatch:
    """Polls the workers discovery announced, every ``interval`` seconds, while entered."""

    def __init__(self, interval: float, *, as_json: bool) -> None:
        self.interval = interval
        self.as_json = as_json
        self._workers: dict[str, WorkerMetadata] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._shown: dict[str, tuple[int, int] | None] = {}
        self._poller: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> LoadWatch:
        self._poller = asyncio.get_running_loop().create_task(self._poll())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)

    def apply(self, event: DiscoveryEvent) -> None:
        """Follow discovery: poll workers as they come, forget them as they go."""
        uid = event.metadata.uid
        if event.type == "worker-dropped":
            self._workers.pop(uid, None)
            self._shown.pop(uid, None)
            channel = self._channels.pop(uid, None)
            if channel is not None:
                asyncio.get_running_loop().create_task(channel.close())
            return
        if event.metadata.secure:
            if uid not in self._workers:
                warn(f"worker {printable(uid)} serves TLS: its load is not shown")
            self._workers[uid] = event.metadata
            return
        old = self._workers.get(uid)
        self._workers[uid] = event.metadata
        if old is not None and old.address != event.metadata.address:
            channel = self._channels.pop(uid, None)
            if channel is not None:
                asyncio.get_running_loop().create_task(channel.close())
        self._changed.set()

    async def _poll(self) -> None:
        while True:
            workers = [w for w in self._workers.values() if not w.secure]
            answers = await asyncio.gather(*(self._ask(w) for w in workers))
            for worker, answer in zip(workers, answers, strict=True):
                if worker.uid in self._workers:
                    self._show(worker, answer)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._changed.wait()

    async def _ask(self, worker: WorkerMetadata) -> tuple[int, int] | None:
        channel = self._channels.get(worker.uid)
        if channel is None:
            channel = grpc.aio.insecure_channel(worker.address, options=CHANNEL_OPTIONS)
            self._channels[worker.uid] = channel
        stats = channel.unary_unary(
            STATS_METHOD,
            request_serializer=pb.StatsRequest.SerializeToString,
            response_deserializer=pb.LoadReport.FromString,
        )
        try:
            report: pb.LoadReport = await stats(pb.StatsRequest(), timeout=ANSWER_SECONDS)
        except grpc.aio.AioRpcError:
            return None
        return report.running, report.completed

    def _show(self, worker: WorkerMetadata, answer: tuple[int, int] | None) -> None:
        if worker.uid in self._shown and self._shown[worker.uid] == answer:
            return
        self._shown[worker.uid] = answer
        running, completed = answer if answer is not None else (None, None)
        if self.as_json:
            say(
                json.dumps(
                    {
                        "type": "load",
                        "uid": worker.uid,
                        "address": worker.address,
                        "running": running,
                        "completed": completed,
                    }
                )
            )
        else:
            uid, address = printable(worker.uid), printable(worker.address)
            if answer is None:
                say(f"load {uid} {address} unknown (the worker did not answer)")
            else:
                say(f"load {uid} {address} running={running} completed={completed}")
