"""WorkerGroup: starts, publishes, restarts, withdraws and stops a set of worker processes.

Both ``WorkerPool`` and ``wool worker`` own their workers through one of these. Each
worker has a slot; when a worker exits without being asked to, the slot withdraws it from
discovery and (unless restarts are off) starts a replacement after a delay that doubles
with each failed try. A replacement is a new process with a new uid, so that a late
withdrawal of the dead worker can never hide it. A slot whose workers keep failing gives
up after ``restart_tries`` tries in a row, reporting the last lines of error output.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from wool._hooks import plugin_manager
from wool._metadata import DiscoveryEvent
from wool._protocols import DiscoveryPublisherLike
from wool._settings import Settings, current
from wool._supervisor_spawn import WorkerProcess, WorkerSpec, WorkerStartError, describe_exit

log = logging.getLogger("wool.pool")

Report = Callable[[int, str], None]
"""Where a group says what happens to its workers: ``report(logging.WARNING, text)``."""


class PublishError(RuntimeError):
    """A worker could not be published through discovery."""


class _Slot:
    """One place in the group: the worker filling it now, and its run of failures."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.worker: WorkerProcess | None = None
        self.published = False
        self.failures = 0
        self.gave_up: str | None = None
        self.watcher: asyncio.Task[None] | None = None


class WorkerGroup:
    """Worker processes started from ``specs`` and published through ``publisher``."""

    def __init__(
        self,
        specs: Sequence[WorkerSpec],
        publisher: DiscoveryPublisherLike,
        *,
        grace: float,
        restart: bool = True,
        settings: Settings | None = None,
        label: str = "discovery",
        report: Report | None = None,
    ) -> None:
        self.publisher = publisher
        self.grace = grace
        self.restart = restart
        self.settings = settings or current()
        self.label = label
        self.deaths = 0
        """How many times a worker of this group exited without being asked to."""
        self.exhausted = asyncio.Event()
        """Set when no worker runs and none will be restarted."""
        self._report = report or log.log
        self._slots = [_Slot(spec) for spec in specs]
        self._stopping = False

    @property
    def workers(self) -> list[WorkerProcess]:
        """The workers running now (a dead one is gone from here as soon as it is seen)."""
        return [
            s.worker
            for s in self._slots
            if s.worker is not None and s.worker.running and s.published
        ]

    @property
    def started(self) -> list[WorkerProcess]:
        """Every worker process filling a slot now, published or not."""
        return [s.worker for s in self._slots if s.worker is not None]

    async def start(self) -> None:
        """Start every worker; :class:`WorkerStartError` if one could not (the others keep
        running until :meth:`stop`)."""
        for slot in self._slots:
            slot.worker = self._new_worker(slot)
        results = await asyncio.gather(*(w.start() for w in self.started), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            count = len(self._slots)
            if count == 1:
                raise failures[0]
            first = failures[0]
            raise WorkerStartError(f"{len(failures)} of {count} workers could not start: {first}")

    async def publish(self) -> None:
        """Publish every started worker, then begin watching them."""
        for slot in self._slots:
            await self._publish(slot)
        loop = asyncio.get_running_loop()
        for slot in self._slots:
            slot.watcher = loop.create_task(self._watch(slot))

    def begin_stop(self) -> None:
        """From now on a worker that exits is expected to: neither reported nor restarted.

        Called as soon as the owner decides to stop (a signal), since the same signal may
        reach the workers themselves and end them before the owner gets to :meth:`stop`.
        """
        self._stopping = True

    async def stop(self, grace: float | None = None) -> list[tuple[WorkerProcess, BaseException]]:
        """Withdraw every worker, then stop them all within ``grace`` (default: the group's).

        Returns the workers that could not be stopped cleanly, with the error.
        """
        self.begin_stop()
        watchers = [s.watcher for s in self._slots if s.watcher is not None]
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for slot in self._slots:
            await self._withdraw(slot)
        workers = self.started
        grace = self.grace if grace is None else grace
        results = await asyncio.gather(*(w.stop(grace) for w in workers), return_exceptions=True)
        return [
            (w, r) for w, r in zip(workers, results, strict=True) if isinstance(r, BaseException)
        ]

    def kill(self) -> None:
        """Kill every worker at once, without waiting for its tasks."""
        self.begin_stop()
        for worker in self.started:
            worker.kill()

    def absence(self) -> str:
        """Why this group may have no worker to offer now, or ``""``."""
        if not self.deaths:
            return ""
        times = "once" if self.deaths == 1 else f"{self.deaths} times"
        text = f"its own workers died {times}, {len(self.workers)} of {len(self._slots)} run now"
        if not self.restart:
            return text + " (restarts are off)"
        gave_up = [s.gave_up for s in self._slots if s.gave_up]
        if gave_up:
            text += f"; {gave_up[0]}"
        return text

    def _new_worker(self, slot: _Slot) -> WorkerProcess:
        return WorkerProcess.of(slot.spec, self.settings, self.grace)

    async def _publish(self, slot: _Slot) -> None:
        worker = slot.worker
        assert worker is not None and worker.metadata is not None
        try:
            async with asyncio.timeout(self.settings.publish_timeout):
                await self.publisher.publish(DiscoveryEvent("worker-added", worker.metadata))
        except Exception as exc:
            raise PublishError(
                f"could not publish worker {worker.uid} through {self.label}: "
                f"{exc or type(exc).__name__}"
            ) from exc
        slot.published = True

    async def _withdraw(self, slot: _Slot) -> None:
        if not slot.published:
            return
        slot.published = False
        worker = slot.worker
        assert worker is not None and worker.metadata is not None
        try:
            async with asyncio.timeout(self.settings.publish_timeout):
                await self.publisher.publish(DiscoveryEvent("worker-dropped", worker.metadata))
        except Exception as exc:
            self._report(
                logging.WARNING,
                f"could not withdraw worker {worker.uid} from {self.label}: "
                f"{exc or type(exc).__name__}",
            )

    async def _watch(self, slot: _Slot) -> None:
        """Replace the slot's worker each time it exits unexpectedly, within the limits."""
        loop = asyncio.get_running_loop()
        while True:
            worker = slot.worker
            assert worker is not None and worker.process is not None
            code = await worker.wait()
            if self._stopping or worker.stop_requested:
                return
            self.deaths += 1
            await self._withdraw(slot)
            what = f"worker {worker.uid} (pid {worker.process.pid}) {describe_exit(code)}"
            if not self.restart:
                self._report(
                    logging.WARNING,
                    f"{what}; withdrew it from {self.label}, {len(self.workers)} left",
                )
                self._check_exhausted()
                return
            lived = loop.time() - (worker.started_at or loop.time())
            slot.failures = 1 if lived >= self.settings.stable_after else slot.failures + 1
            if not await self._replace(slot, what):
                self._check_exhausted()
                return

    async def _replace(self, slot: _Slot, what: str) -> bool:
        """Start a replacement for the slot's dead worker; False once the slot gives up."""
        settings = self.settings
        dead = slot.worker
        assert dead is not None
        while True:
            if slot.failures > settings.restart_tries:
                assert slot.worker is not None
                slot.gave_up = (
                    f"worker {dead.uid} failed {settings.restart_tries} times in a row and "
                    f"is not restarted again; last error output:{slot.worker.tail() or ' none'}"
                )
                self._report(logging.ERROR, f"{what}; {slot.gave_up}")
                return False
            delay = min(
                settings.restart_backoff * 2 ** (slot.failures - 1), settings.restart_backoff_max
            )
            self._report(
                logging.WARNING,
                f"{what}; withdrew it from {self.label} and restarts it in {delay:g} s "
                f"(try {slot.failures} of {settings.restart_tries})",
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return False
            slot.worker = self._new_worker(slot)
            try:
                await slot.worker.start()
                await self._publish(slot)
            except (WorkerStartError, PublishError) as exc:
                await slot.worker.stop(0)
                slot.failures += 1
                what = f"the replacement of worker {dead.uid} failed: {exc}"
                continue
            metadata = slot.worker.metadata
            assert metadata is not None
            self._report(
                logging.WARNING,
                f"restarted worker {dead.uid} as {metadata.uid} at {metadata.address} "
                f"(pid {metadata.pid})",
            )
            assert dead.metadata is not None
            try:
                plugin_manager().hook.wool_worker_restarted(
                    dead=dead.metadata, replacement=metadata
                )
            except Exception:
                log.exception("wool_worker_restarted hook failed")
            return True

    def _check_exhausted(self) -> None:
        def finished(slot: _Slot) -> bool:
            running = slot.worker is not None and slot.worker.running
            return not running and (not self.restart or slot.gave_up is not None)

        if all(finished(s) for s in self._slots):
            self.exhausted.set()
