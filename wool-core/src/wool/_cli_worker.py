"""``wool worker``: run workers on this host in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import re
import signal
import socket

import attrs

from wool import _import_path
from wool._addresses import advertised_host, check_exposure, is_loopback, tls_of
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
from wool._protocols import DiscoveryLike, DiscoveryPublisherLike
from wool._settings import current
from wool._supervisor import PublishError, WorkerGroup
from wool._supervisor_spawn import WorkerProcess, WorkerSpec, WorkerStartError

MAX_PORT = 65535


@attrs.frozen
class WorkerCommandOptions:
    """What ``wool worker`` was asked to run, validated."""

    size: int
    tags: frozenset[str]
    host: str | None
    port: int
    advertise: str | None
    credentials: WorkerCredentials | None
    grace: float
    restart: bool = True
    concurrency: int | None = None
    insecure: bool = False

    def specs(self) -> list[WorkerSpec]:
        """How to start each worker."""
        return [
            WorkerSpec(
                self.tags,
                self.host,
                port,
                self.advertise,
                self.credentials,
                concurrency=self.concurrency,
                insecure=self.insecure,
            )
            for port in self.ports()
        ]

    def ports(self) -> list[int]:
        """The port of each worker: all ephemeral (0), or ``port``, ``port + 1``, ..."""
        if self.port == 0:
            return [0] * self.size
        return [self.port + i for i in range(self.size)]


def settings_from_args(args: argparse.Namespace) -> WorkerCommandOptions:
    """Check the flags of ``wool worker``; :class:`UsageError` names what to change."""
    size = args.size if args.size is not None else (os.cpu_count() or 1)
    if size < 1:
        raise UsageError(f"--size must be at least 1, got {size}")
    tags: frozenset[str] = frozenset(args.tag or ())
    if "" in tags:
        raise UsageError("--tag needs a non-empty name")
    if not 0 <= args.port <= MAX_PORT:
        raise UsageError(f"--port must be between 0 and {MAX_PORT}, got {args.port}")
    if args.port and args.port + size - 1 > MAX_PORT:
        raise UsageError(
            f"--port {args.port} with --size {size} needs ports up to {args.port + size - 1}; "
            f"choose a --port below {MAX_PORT - size + 2}, or --port 0"
        )
    if args.host is None and (args.port or args.advertise):
        flag = "--port" if args.port else "--advertise"
        raise UsageError(
            f"{flag} needs --host: without it the workers listen on unix sockets that only "
            "this user can reach (add --host 127.0.0.1 for TCP on this host)"
        )
    try:
        advertised_host(args.host, args.advertise)
    except ValueError:
        raise UsageError(
            f"--host {args.host!r} listens on every interface, so callers need to be "
            "told where to connect: add --advertise ADDRESS (an address of this host that "
            "callers can reach)"
        ) from None
    if args.grace is not None and args.grace < 0:
        raise UsageError(f"--grace must be 0 or more seconds, got {args.grace:g}")
    credentials = credentials_from_args(args)
    try:
        check_exposure(args.host, tls_of(credentials), args.insecure)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return WorkerCommandOptions(
        size=size,
        tags=tags,
        host=args.host,
        port=args.port,
        advertise=args.advertise or None,
        credentials=credentials,
        grace=current().command_grace if args.grace is None else args.grace,
        restart=args.restart,
        concurrency=_concurrency(args),
        insecure=args.insecure,
    )


def _concurrency(args: argparse.Namespace) -> int | None:
    value = getattr(args, "concurrency", None)
    if value is not None and value < 1:
        raise UsageError(f"--concurrency must be at least 1, got {value}")
    return value


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
    # Workers import the modules of the routines they run by name: the current directory
    # serves the ones no installed package provides (last, so it shadows nothing), for
    # this process and the workers it spawns (they take this sys.path).
    cwd = _import_path.append_working_directory()
    if _import_path.writable_by_others(cwd):
        warn(
            f"SECURITY WARNING: the current directory {cwd} is writable by other users, "
            "and the workers import your routines' modules from it: anyone who can write "
            "there can run code as this user. Run `wool worker` from a directory only you "
            "can write to."
        )
    discovery, label = open_discovery(args.discovery, args.namespace, args)
    if settings.host is None and args.discovery != DEFAULT_DISCOVERY:
        raise UsageError(
            f"--discovery {args.discovery} publishes the workers for callers elsewhere, which "
            "cannot reach the unix sockets they listen on without --host: add --host "
            "(--host 0.0.0.0 --advertise ADDRESS with TLS files to serve other hosts, "
            "--host 127.0.0.1 for this host only)"
        )
    if settings.host is not None:
        check_ports(settings.host, settings.ports())
    reach = settings.advertise or settings.host
    if args.discovery != DEFAULT_DISCOVERY and reach is not None and is_loopback(reach):
        warn(
            f"the workers are reachable at {reach} only, so callers on other hosts cannot "
            "use them; to serve them, add --host 0.0.0.0 --advertise ADDRESS (an address "
            "of this host that they can reach) and TLS files"
        )
    return asyncio.run(_Runner(settings, discovery, label).run())


class _Runner:
    """Owns the worker group and the discovery publisher of one ``wool worker`` run."""

    def __init__(
        self, settings: WorkerCommandOptions, discovery: DiscoveryLike, label: str
    ) -> None:
        self.settings = settings
        self.discovery = discovery
        self.label = label
        self.group: WorkerGroup | None = None
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
                group = self.group = WorkerGroup(
                    self.settings.specs(),
                    publisher,
                    grace=self.settings.grace,
                    restart=self.settings.restart,
                    label=self.label,
                    report=_report,
                )
                try:
                    status = await self._supervise(group) if await self._start(group) else 0
                finally:
                    await self._stop(group)
            say("stopped")
            return status

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            self.signal = sig
            self.stopping.set()
            if self.group is not None:  # the workers may get the same signal
                self.group.begin_stop()
            return
        warn(f"{sig.name} again: killing the workers without waiting for their tasks")
        if self.group is not None:
            self.group.kill()

    async def _start(self, group: WorkerGroup) -> bool:
        """Start and publish every worker; False if a signal came meanwhile.

        A signal does not interrupt the start (a worker killed in its handshake only makes
        noise): the workers finish starting, then stop like after ``ready``.
        """
        try:
            await group.start()
        except WorkerStartError as exc:
            if self.stopping.is_set():
                return False
            raise CommandFailed(str(exc)) from exc
        if self.stopping.is_set():
            return False
        try:
            await group.publish()
        except PublishError as exc:
            raise CommandFailed(str(exc)) from exc
        for worker in group.workers:
            say(_describe(worker))
        count = f"{len(group.workers)} worker{'s' if len(group.workers) != 1 else ''}"
        say(f"ready: {count} published through {self.label}; stop with Ctrl-C or SIGTERM")
        return True

    async def _supervise(self, group: WorkerGroup) -> int:
        """Wait for a stop signal, or until every worker is gone for good (status 1)."""
        stop = asyncio.ensure_future(self.stopping.wait())
        gone = asyncio.ensure_future(group.exhausted.wait())
        try:
            await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            gone.cancel()
        if self.stopping.is_set():
            return 0
        if group.restart:
            warn("error: every worker has exited and none can be restarted; stopping")
        else:
            warn("error: every worker has exited (restarts are off); stopping")
        return 1

    async def _stop(self, group: WorkerGroup) -> None:
        """Withdraw the published workers, then stop every worker within the grace period."""
        running = [w for w in group.started if w.running]
        if running:
            grace = self.settings.grace
            cause = f"{self.signal.name}: " if self.signal is not None else ""
            say(
                f"{cause}stopping {len(running)} worker{'s' if len(running) != 1 else ''} "
                f"(grace {grace:g} s; signal again to kill them now)"
            )
        for worker, error in await group.stop():
            pid = worker.process.pid if worker.process is not None else "?"
            warn(f"could not stop worker {worker.uid} (pid {pid}): {error!r}")


def _report(level: int, message: str) -> None:
    if level >= logging.WARNING:
        warn(message)
    else:
        say(message)


def _describe(worker: WorkerProcess) -> str:
    metadata = worker.metadata
    assert metadata is not None
    line = f"worker {metadata.uid} at {metadata.address} (pid {metadata.pid})"
    if metadata.tags:
        line += f" tags {','.join(sorted(metadata.tags))}"
    if metadata.secure:
        line += " tls"
    return line
