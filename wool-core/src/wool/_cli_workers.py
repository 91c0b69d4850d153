"""``wool workers``: list, or follow, the workers a discovery sees (and their load)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Callable

from wool._cli_common import CommandFailed, UsageError, on_stop_signals, open_discovery, say, warn
from wool._cli_load import LoadWatch
from wool._log_limit import printable
from wool._metadata import DiscoveryEvent, WorkerMetadata
from wool._protocols import DiscoveryLike

COLUMNS = ("UID", "ADDRESS", "TAGS", "PID", "VERSION", "SECURE")


def run(args: argparse.Namespace) -> int:
    """``wool workers``: returns the exit status."""
    if args.wait < 0:
        raise UsageError(f"--wait must be 0 or more seconds, got {args.wait:g}")
    if not args.interval > 0:
        raise UsageError(f"--interval must be more than 0 seconds, got {args.interval:g}")
    discovery, label = open_discovery(args.discovery, args.namespace, args)
    tags = frozenset(args.tag or ())
    if args.watch:
        return asyncio.run(_watch(discovery, tags, as_json=args.json, interval=args.interval))
    return asyncio.run(_list(discovery, label, tags, wait=args.wait, as_json=args.json))


async def _list(
    discovery: DiscoveryLike, label: str, tags: frozenset[str], *, wait: float, as_json: bool
) -> int:
    known: dict[str, WorkerMetadata] = {}

    def apply(event: DiscoveryEvent) -> None:
        if event.type == "worker-dropped" or not tags <= event.metadata.tags:
            known.pop(event.metadata.uid, None)
        else:
            known[event.metadata.uid] = event.metadata

    interrupted = await _follow(discovery, apply, timeout=wait)
    if interrupted is not None:
        warn(f"{interrupted.name}: stopped before the listing was complete")
        return 128 + interrupted.value
    workers = sorted(known.values(), key=_order)
    if as_json:
        say(json.dumps([w.to_dict() for w in workers], indent=2))
    elif workers:
        for line in _table(workers):
            say(line)
    if not workers:
        which = f" with tags {','.join(sorted(tags))}" if tags else ""
        warn(f"no workers{which} found through {label} within {wait:g} s")
    return 0


async def _watch(
    discovery: DiscoveryLike, tags: frozenset[str], *, as_json: bool, interval: float
) -> int:
    load = LoadWatch(interval, as_json=as_json)

    def show(event: DiscoveryEvent) -> None:
        if not tags <= event.metadata.tags:
            return
        if as_json:
            say(json.dumps({"type": event.type, "metadata": event.metadata.to_dict()}))
        else:
            say(_event_line(event))
        load.apply(event)

    async with load:
        await _follow(discovery, show, timeout=None)
    return 0


async def _follow(
    discovery: DiscoveryLike,
    callback: Callable[[DiscoveryEvent], None],
    timeout: float | None,  # noqa: ASYNC109 (the command's --timeout: it ends the follow normally)
) -> signal.Signals | None:
    """Feed the subscriber's events to ``callback`` for ``timeout`` seconds (or forever).

    Returns the signal that ended it early, if one did. The subscription is always closed.
    """
    stopped: list[signal.Signals] = []
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        stopped.append(sig)
        stop.set()

    async def consume() -> None:
        iterator = aiter(discovery.subscriber)
        try:
            async for event in iterator:
                callback(event)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    with on_stop_signals(on_signal):
        consumer = asyncio.ensure_future(consume())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({consumer, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        consumer.cancel()
        await asyncio.wait({consumer})
    if not consumer.cancelled() and consumer.exception() is not None:
        error = consumer.exception()
        raise CommandFailed(
            f"discovery failed: {type(error).__name__}: {printable(str(error))}"
        ) from error
    return stopped[0] if stopped else None


def _order(metadata: WorkerMetadata) -> tuple[str, int, str]:
    try:
        return metadata.host, metadata.port, metadata.uid
    except ValueError:
        return metadata.address, 0, metadata.uid


def _row(metadata: WorkerMetadata) -> tuple[str, ...]:
    return (
        printable(metadata.uid),
        printable(metadata.address),
        printable(",".join(sorted(metadata.tags))) or "-",
        str(metadata.pid),
        printable(metadata.version),
        "yes" if metadata.secure else "no",
    )


def _table(workers: list[WorkerMetadata]) -> list[str]:
    rows = [COLUMNS, *(_row(w) for w in workers)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _event_line(event: DiscoveryEvent) -> str:
    uid, address, tags, pid, version, secure = _row(event.metadata)
    return f"{event.type} {uid} {address} pid={pid} tags={tags} version={version} secure={secure}"
