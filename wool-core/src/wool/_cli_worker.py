"""``wool worker``: run workers on this host in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import os
import re
import signal
import socket
import sys

import attrs

from wool._cli_common import (
    DEFAULT_DISCOVERY,
    CommandFailed,
    UsageError,
    on_stop_signals,
    open_discovery,
    say,
    warn,
)
from wool._credentials import WorkerCredentials
from wool._metadata import DiscoveryEvent
from wool._protocols import DiscoveryLike, DiscoveryPublisherLike
from wool._spawn import LocalWorker
from wool._worker import WILDCARDS, check_exposure

PUBLISH_TIMEOUT = 5.0
"""Seconds a discovery publish may take before the command gives up on it."""

MAX_PORT = 65535


@attrs.frozen
class WorkerSettings:
    """What ``wool worker`` was asked to run, validated."""

    size: int
    tags: frozenset[str]
    host: str | None
    port: int
    advertise: str | None
    credentials: WorkerCredentials | None
    grace: float
    insecure: bool = False

    def ports(self) -> list[int]:
        """The port of each worker: all ephemeral (0), or ``port``, ``port + 1``, ..."""
        if self.port == 0:
            return [0] * self.size
        return [self.port + i for i in range(self.size)]


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    """Check the flags of ``wool worker``; :class:`UsageError` names what to change."""
    size = args.size if args.size is not None else (os.cpu_count() or 1)
    if size < 1:
        raise UsageError(f"--size must be at least 1, got {size}")
    tags = frozenset(args.tag or ())
    if "" in tags:
        raise UsageError("--tag needs a non-empty name")
    if not 0 <= args.port <= MAX_PORT:
        raise UsageError(f"--port must be between 0 and {MAX_PORT}, got {args.port}")
    if args.port and args.port + size - 1 > MAX_PORT:
        raise UsageError(
            f"--port {args.port} with --size {size} needs ports up to {args.port + size - 1}; "
            f"choose a --port below {MAX_PORT - size + 2}, or --port 0"
        )
    if args.host in WILDCARDS and not args.advertise:
        raise UsageError(
            f"--host {args.host!r} listens on every interface, so callers need to be "
            "told where to connect: add --advertise ADDRESS (an address of this host that "
            "callers can reach)"
        )
    if args.host is None and (args.port or args.advertise):
        flag = "--port" if args.port else "--advertise"
        raise UsageError(
            f"{flag} needs --host: without it the workers listen on unix sockets that only "
            "this user can reach (add --host 127.0.0.1 for TCP on this host)"
        )
    if args.grace < 0:
        raise UsageError(f"--grace must be 0 or more seconds, got {args.grace:g}")
    credentials = credentials_from_args(args)
    try:
        check_exposure(args.host, credentials, args.insecure)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return WorkerSettings(
        size=size,
        tags=tags,
        host=args.host,
        port=args.port,
        advertise=args.advertise or None,
        credentials=credentials,
        grace=args.grace,
        insecure=args.insecure,
    )


def credentials_from_args(args: argparse.Namespace) -> WorkerCredentials | None:
    """``--ca``, ``--cert``, ``--key`` and ``--mutual``: all of the files, or none."""
    given = {"--ca": args.ca, "--cert": args.cert, "--key": args.key}
    missing = [flag for flag, path in given.items() if not path]
    if len(missing) == len(given):
        if args.mutual is not None:
            flag = "--mutual" if args.mutual else "--no-mutual"
            raise UsageError(f"{flag} needs TLS files: add --ca, --cert and --key")
        return None
    if missing:
        raise UsageError(
            f"TLS needs all of --ca, --cert and --key; missing {' and '.join(missing)} "
            "(or drop the TLS options to serve plaintext)"
        )
    try:
        return WorkerCredentials.from_files(
            ca_path=args.ca,
            key_path=args.key,
            cert_path=args.cert,
            mutual=True if args.mutual is None else args.mutual,
        )
    except ValueError as exc:
        # The messages name the parameters of from_files ("cannot read ca_path '...'"):
        # name the options instead.
        message = re.sub(r"\b(ca|key|cert)_path\b", r"--\1", str(exc))
        raise UsageError(f"{message}; check the TLS file options") from None


def check_ports(host: str, ports: list[int]) -> None:
    """Fail early, with the fix, if ``host`` cannot be bound or a fixed port is taken.

    Only a courtesy for a clear message: a port can still be taken between this check and
    the worker binding it, in which case the worker's own error is reported.
    """
    for port in sorted(set(ports)):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise UsageError(
                        f"port {port} on {host} is already in use; choose another --port, "
                        "or --port 0 for ports the system picks"
                    ) from None
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise UsageError(
                        f"{host} is not an address of this host; pass one of its addresses "
                        "to --host (or 0.0.0.0 with --advertise)"
                    ) from None
                if exc.errno == errno.EACCES:
                    raise UsageError(
                        f"no permission to listen on port {port}; choose a --port above 1023"
                    ) from None
                raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """``wool worker``: returns the exit status."""
    settings = settings_from_args(args)
    discovery, label = open_discovery(args.discovery, args.namespace)
    if settings.host is not None:
        check_ports(settings.host, settings.ports())
    reach = settings.advertise or settings.host
    if args.discovery != DEFAULT_DISCOVERY and (reach is None or _loopback(reach)):
        where = "through unix sockets of this user" if reach is None else f"at {reach}"
        warn(
            f"the workers are reachable {where} only, so callers on other hosts cannot "
            "use them; to serve them, add --host 0.0.0.0 --advertise ADDRESS (an address "
            "of this host that they can reach) and TLS files"
        )
    # Workers import the modules of the routines they run by name, as `python -m` would
    # from here: make the current directory importable for them (and for this process).
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return asyncio.run(_Runner(settings, discovery, label).run())


class _Runner:
    """Owns the workers and the discovery publisher of one ``wool worker`` run."""

    def __init__(self, settings: WorkerSettings, discovery: DiscoveryLike, label: str) -> None:
        self.settings = settings
        self.discovery = discovery
        self.label = label
        self.workers = [
            LocalWorker(
                tags=settings.tags,
                host=settings.host,
                port=port,
                advertise=settings.advertise,
                credentials=settings.credentials,
                insecure=settings.insecure,
            )
            for port in settings.ports()
        ]
        self.published: list[LocalWorker] = []
        self.stopping = asyncio.Event()
        self.signal: signal.Signals | None = None

    async def run(self) -> int:
        with on_stop_signals(self._on_signal):
            async with contextlib.AsyncExitStack() as stack:
                publisher: DiscoveryPublisherLike = self.discovery.publisher
                try:
                    await stack.enter_async_context(publisher)
                except Exception as exc:
                    raise CommandFailed(f"could not open {self.label}: {exc}") from exc
                try:
                    status = await self._supervise(publisher) if await self._start(publisher) else 0
                finally:
                    await self._stop(publisher)
            say("stopped")
            return status

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            self.signal = sig
            self.stopping.set()
            return
        warn(f"{sig.name} again: killing the workers without waiting for their tasks")
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    async def _start(self, publisher: DiscoveryPublisherLike) -> bool:
        """Start and publish every worker; False if a signal came meanwhile.

        A signal does not interrupt the start (a worker killed in its handshake only makes
        noise): the workers finish starting, then stop like after ``ready``.
        """
        results = await asyncio.gather(*(w.start() for w in self.workers), return_exceptions=True)
        if self.stopping.is_set():
            return False
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise CommandFailed(
                f"{len(failures)} of {len(self.workers)} workers could not start: {failures[0]}"
            )
        for worker in self.workers:
            assert worker.metadata is not None
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await publisher.publish(DiscoveryEvent("worker-added", worker.metadata))
            except Exception as exc:
                raise CommandFailed(
                    f"could not publish worker {worker.uid} through {self.label}: "
                    f"{exc or type(exc).__name__}"
                ) from exc
            self.published.append(worker)
            say(_describe(worker))
        count = f"{len(self.workers)} worker{'s' if len(self.workers) != 1 else ''}"
        say(f"ready: {count} published through {self.label}; stop with Ctrl-C or SIGTERM")
        return True

    async def _supervise(self, publisher: DiscoveryPublisherLike) -> int:
        """Wait for a stop signal, withdrawing workers that die meanwhile."""
        stop = asyncio.ensure_future(self.stopping.wait())
        exits: dict[asyncio.Future[int], LocalWorker] = {}
        for worker in self.published:
            assert worker.process is not None
            exits[asyncio.ensure_future(worker.process.wait())] = worker
        try:
            while exits:
                done, _ = await asyncio.wait({stop, *exits}, return_when=asyncio.FIRST_COMPLETED)
                if self.stopping.is_set():
                    return 0
                for future, worker in list(exits.items()):
                    if future not in done:
                        continue
                    del exits[future]
                    await self._withdraw(publisher, worker)
                    warn(
                        f"worker {worker.uid} (pid {_pid(worker)}) exited unexpectedly with "
                        f"code {future.result()}; withdrew it from discovery, "
                        f"{len(self.published)} left"
                    )
            warn("error: every worker has exited; stopping")
            return 1
        finally:
            for future in (stop, *exits):
                future.cancel()

    async def _withdraw(self, publisher: DiscoveryPublisherLike, worker: LocalWorker) -> None:
        if worker not in self.published:
            return
        self.published.remove(worker)
        assert worker.metadata is not None
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await publisher.publish(DiscoveryEvent("worker-dropped", worker.metadata))
        except Exception as exc:
            warn(f"could not withdraw worker {worker.uid} from discovery: {exc!r}")

    async def _stop(self, publisher: DiscoveryPublisherLike) -> None:
        """Withdraw the published workers, then stop every worker within the grace period."""
        running = [w for w in self.workers if w.process and w.process.returncode is None]
        if running:
            grace = self.settings.grace
            cause = f"{self.signal.name}: " if self.signal is not None else ""
            say(
                f"{cause}stopping {len(running)} worker{'s' if len(running) != 1 else ''} "
                f"(grace {grace:g} s; signal again to kill them now)"
            )
        for worker in list(self.published):
            await self._withdraw(publisher, worker)
        results = await asyncio.gather(
            *(w.stop(self.settings.grace) for w in self.workers), return_exceptions=True
        )
        for worker, result in zip(self.workers, results, strict=True):
            if isinstance(result, BaseException):
                warn(f"could not stop worker {worker.uid} (pid {_pid(worker)}): {result!r}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pid(worker: LocalWorker) -> int | str:
    return worker.process.pid if worker.process is not None else "?"


def _describe(worker: LocalWorker) -> str:
    metadata = worker.metadata
    assert metadata is not None
    line = f"worker {metadata.uid} at {metadata.address} (pid {metadata.pid})"
    if metadata.tags:
        line += f" tags {','.join(sorted(metadata.tags))}"
    if metadata.secure:
        line += " tls"
    return line
