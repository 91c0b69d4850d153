"""The subscriber: lists a namespace's workers, then watches it for changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterator

import attrs
import grpc.aio

from wool import DiscoveryEvent, WorkerMetadata
from wool_discovery_etcd import _records
from wool_discovery_etcd._client import (
    RANGE,
    WATCH_PATH,
    EtcdClient,
    call_until,
    is_transient,
    raise_refusal,
    read_stream,
    sleep_backoff,
    token_expired,
)
from wool_discovery_etcd._errors import EtcdAuthError, EtcdUnavailable
from wool_discovery_etcd._etcdpb import etcd_pb2 as pb
from wool_discovery_etcd._settings import EtcdSettings

log = logging.getLogger(__name__)


class _Compacted(Exception):
    """The watch's start revision was compacted away: list again."""


@attrs.frozen
class EtcdSubscriber:
    """Delivers the worker events of a namespace; picklable (settings only).

    Each ``aiter()`` connects on its first step, lists the namespace and yields
    ``worker-added`` for each worker found, then watches the namespace from the listed
    revision on, turning puts into ``worker-added`` or ``worker-updated`` and deletes
    (a clean withdrawal, or a lease that expired) into ``worker-dropped``.

    When the member in use fails, the watch resumes on the next endpoint from the last
    revision it delivered; when that revision was compacted meanwhile, it lists again
    and yields the difference. Either way no event is repeated and none is missed.

    Raises ``EtcdUnavailable`` when no endpoint answers within the connect timeout of
    the first step (later outages are waited out), ``EtcdAuthError`` when etcd refuses
    the credentials, and ``IncompatibleNamespace`` when the namespace holds records of
    another format. A record that does not parse is logged and ignored.
    """

    settings: EtcdSettings

    def __aiter__(self) -> AsyncGenerator[DiscoveryEvent, None]:
        return _follow(self.settings)


async def _follow(settings: EtcdSettings) -> AsyncGenerator[DiscoveryEvent, None]:
    client = EtcdClient(settings)
    loop = asyncio.get_running_loop()
    deadline: float | None = loop.time() + settings.connect_timeout
    known: dict[bytes, WorkerMetadata] = {}
    revision: int | None = None
    attempt = 0
    try:
        while True:
            try:
                if revision is None:
                    listed, revision = await _list(client, deadline)
                    deadline = None  # connected once: later outages are waited out
                    for event in _diff(known, listed):
                        yield event
                    known = listed
                async for key, value, mod_revision in _watch(client, revision):
                    attempt = 0
                    event = _apply(known, key, value, settings)
                    revision = mod_revision
                    if event is not None:
                        yield event
            except _Compacted:
                log.info(
                    "etcd compacted past revision %s; listing %s again",
                    revision,
                    settings.prefix.decode(),
                )
                revision = None
            except grpc.aio.AioRpcError as exc:
                if not is_transient(exc) and not token_expired(exc):
                    raise_refusal(exc, client)
                    raise
                log.warning(
                    "etcd watch on %s failed (%s); resuming", client.endpoint, exc.details()
                )
                await client.failover()
                await sleep_backoff(attempt)
                attempt += 1
            except EtcdUnavailable as exc:
                if deadline is not None:
                    raise
                log.warning("%s; retrying", exc)
                await sleep_backoff(attempt)
                attempt += 1
    finally:
        await client.close()


async def _list(
    client: EtcdClient, deadline: float | None
) -> tuple[dict[bytes, WorkerMetadata], int]:
    prefix = client.settings.prefix
    request = pb.RangeRequest(key=prefix, range_end=_records.range_end(prefix))
    response = await call_until(client, RANGE, request, deadline)
    listed: dict[bytes, WorkerMetadata] = {}
    # in the order the records reached their current state, as a watch would have told
    for kv in sorted(response.kvs, key=lambda kv: kv.mod_revision):
        if kv.key == _records.format_key(prefix):
            _records.check_format(kv.value, kv.key, client.settings.describe())
            continue
        metadata = _parse(kv.key, kv.value, client.settings)
        if metadata is not None:
            listed[kv.key] = metadata
    return listed, response.header.revision


async def _watch(
    client: EtcdClient, revision: int
) -> AsyncGenerator[tuple[bytes, bytes | None, int], None]:
    """``(key, value or None when deleted, revision)`` for each change after
    ``revision``; raises ``_Compacted`` when etcd no longer has that history."""
    prefix = client.settings.prefix
    metadata = (*await client.metadata(), ("hasleader", "true"))
    call = client.stream(WATCH_PATH, pb.WatchResponse)(metadata=metadata)
    try:
        create = pb.WatchCreateRequest(
            key=prefix,
            range_end=_records.range_end(prefix),
            start_revision=revision + 1,
            progress_notify=True,
        )
        await call.write(pb.WatchRequest(create_request=create))
        async for response in read_stream(call):
            if response.compact_revision:
                raise _Compacted
            if response.canceled:
                reason = response.cancel_reason or "no reason given"
                if "permission denied" in reason:
                    raise EtcdAuthError(
                        f"etcd at {client.endpoint} refused to watch {prefix.decode()}: {reason}"
                    )
                raise EtcdUnavailable(f"etcd at {client.endpoint} ended the watch: {reason}")
            for event in response.events:
                value = None if event.type == pb.Event.DELETE else event.kv.value
                yield event.kv.key, value, event.kv.mod_revision
        raise EtcdUnavailable(f"etcd at {client.endpoint} closed the watch")
    finally:
        call.cancel()


def _apply(
    known: dict[bytes, WorkerMetadata], key: bytes, value: bytes | None, settings: EtcdSettings
) -> DiscoveryEvent | None:
    """Update ``known`` with one change; the event it makes, if any."""
    if key == _records.format_key(settings.prefix):
        if value is not None:
            _records.check_format(value, key, settings.describe())
        return None
    before = known.pop(key, None)
    after = None if value is None else _parse(key, value, settings)
    if after is not None:
        known[key] = after
    if before is None:
        return None if after is None else DiscoveryEvent("worker-added", after)
    if after is None:
        return DiscoveryEvent("worker-dropped", before)
    return None if after == before else DiscoveryEvent("worker-updated", after)


def _parse(key: bytes, value: bytes, settings: EtcdSettings) -> WorkerMetadata | None:
    if not key.startswith(_records.workers_prefix(settings.prefix)):
        return None
    try:
        return _records.decode(value)
    except ValueError as exc:
        log.warning("ignoring the record at %r on etcd: %s", key.decode(errors="replace"), exc)
        return None


def _diff(
    before: dict[bytes, WorkerMetadata], after: dict[bytes, WorkerMetadata]
) -> Iterator[DiscoveryEvent]:
    """The events that turn ``before`` into ``after``: drops first."""
    for key, metadata in before.items():
        if key not in after:
            yield DiscoveryEvent("worker-dropped", metadata)
    for key, metadata in after.items():
        if key not in before:
            yield DiscoveryEvent("worker-added", metadata)
        elif before[key] != metadata:
            yield DiscoveryEvent("worker-updated", metadata)
