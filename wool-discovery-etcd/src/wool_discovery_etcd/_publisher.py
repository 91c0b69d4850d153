"""The publisher: worker records under one lease that it keeps alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
import grpc.aio

from wool import DiscoveryEvent, WorkerMetadata
from wool.plugins import DiscoveryPublisher
from wool_discovery_etcd import _records
from wool_discovery_etcd._client import (
    DELETE_RANGE,
    KEEPALIVE_PATH,
    LEASE_GRANT,
    LEASE_REVOKE,
    PUT,
    STREAM_END,
    TXN,
    EtcdClient,
    call_until,
    sleep_backoff,
)
from wool_discovery_etcd._errors import EtcdUnavailable
from wool_discovery_etcd._etcdpb import etcd_pb2 as pb
from wool_discovery_etcd._settings import EtcdSettings

log = logging.getLogger(__name__)

REVOKE_TIMEOUT = 2.0
"""How long leaving waits for etcd to revoke the lease (else it expires on its own)."""


class EtcdPublisher(DiscoveryPublisher[EtcdClient]):
    """Publishes workers into a namespace; use as ``async with publisher as p``.

    Entering connects (raising ``EtcdUnavailable``, ``EtcdAuthError`` or
    ``IncompatibleNamespace`` with the fix), marks the namespace's record format, and
    takes a lease of ``ttl`` seconds that a background task keeps alive. ``worker-added``
    and ``worker-updated`` put the worker's record, attached to the lease;
    ``worker-dropped`` deletes it. Leaving revokes the lease, which deletes every record
    still attached, at once.

    A publisher that dies stops the keep-alives and its records go when the lease
    expires. When etcd expires the lease while this publisher is alive (the cluster
    stalled or was unreachable for longer than the TTL), it takes a new lease and puts
    its records again. A publisher can be entered again after it is left, but not twice
    at once.
    """

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self._lease = 0
        self._records: dict[str, WorkerMetadata] = {}
        self._lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None

    @property
    def lease(self) -> int:
        """The id of the lease in use (0 when not entered)."""
        return self._lease

    async def _open(self) -> EtcdClient:
        client = EtcdClient(self.settings)
        try:
            deadline = asyncio.get_running_loop().time() + self.settings.connect_timeout
            await self._mark_format(client, deadline)
            self._lease = await self._grant(client, deadline)
        except BaseException:
            await client.close()
            raise
        self._lock = asyncio.Lock()
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive(client))
        return client

    async def _close(self, client: EtcdClient) -> None:
        keeper, self._keeper = self._keeper, None
        lease, self._lease = self._lease, 0
        self._records = {}
        try:
            if keeper is not None:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
            async with asyncio.timeout(REVOKE_TIMEOUT):
                await client.call(LEASE_REVOKE, pb.LeaseRevokeRequest(ID=lease))
        except (TimeoutError, EtcdUnavailable, grpc.aio.AioRpcError) as error:
            log.warning(
                "could not revoke lease %x on etcd (%s); its workers go when it expires in "
                "at most %d s",
                lease,
                error,
                self.settings.ttl,
            )
        finally:
            await client.close()

    async def _apply(self, client: EtcdClient, event: DiscoveryEvent) -> None:
        """Put or delete the record of the worker of ``event``."""
        metadata = event.metadata
        key = _records.worker_key(self.settings.prefix, metadata.uid)
        async with self._lock:
            if event.type == "worker-dropped":
                self._records.pop(metadata.uid, None)
                await call_until(
                    client, DELETE_RANGE, pb.DeleteRangeRequest(key=key), self._deadline()
                )
                return
            value = _records.encode(metadata)  # ValueError when oversized, before any I/O
            self._records[metadata.uid] = metadata
            await self._put(client, key, value)

    def _deadline(self) -> float:
        """Until when a publication waits for the cluster to come back."""
        return asyncio.get_running_loop().time() + self.settings.connect_timeout

    async def _put(self, client: EtcdClient, key: bytes, value: bytes) -> None:
        try:
            request = pb.PutRequest(key=key, value=value, lease=self._lease)
            await call_until(client, PUT, request, self._deadline())
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # the lease expired
                raise
            await self._renew(client)

    async def _mark_format(self, client: EtcdClient, deadline: float) -> None:
        """Write the namespace's format marker if absent; refuse another format."""
        key = _records.format_key(self.settings.prefix)
        request = pb.TxnRequest(
            compare=[pb.Compare(key=key, target=pb.Compare.CREATE, create_revision=0)],
            success=[
                pb.RequestOp(
                    request_put=pb.PutRequest(key=key, value=str(_records.FORMAT).encode())
                )
            ],
            failure=[pb.RequestOp(request_range=pb.RangeRequest(key=key))],
        )
        response = await call_until(client, TXN, request, deadline)
        if not response.succeeded:
            kvs = response.responses[0].response_range.kvs
            _records.check_format(kvs[0].value if kvs else None, key, self.settings.describe())

    async def _grant(self, client: EtcdClient, deadline: float | None) -> int:
        response = await call_until(
            client, LEASE_GRANT, pb.LeaseGrantRequest(TTL=self.settings.ttl), deadline
        )
        if response.error:
            raise EtcdUnavailable(f"etcd refused a lease: {response.error}")
        return response.ID

    async def _renew(self, client: EtcdClient) -> None:
        """Take a new lease and put every record again (the old lease expired).

        The new lease is used only once every record is on it: if a put fails, the next
        keep-alive of the old lease fails too and the renewal starts over."""
        lease = await self._grant(client, None)
        for uid, metadata in list(self._records.items()):
            key = _records.worker_key(self.settings.prefix, uid)
            value = _records.encode(metadata)
            await client.call(PUT, pb.PutRequest(key=key, value=value, lease=lease))
        log.warning(
            "lease %x on etcd expired; re-published %d workers under lease %x",
            self._lease,
            len(self._records),
            lease,
        )
        self._lease = lease

    async def _keep_alive(self, client: EtcdClient) -> None:
        """Refresh the lease every TTL/3 seconds, for as long as the publisher is entered;
        move to the next member when one fails or is silent for that long."""
        interval = self.settings.ttl / 3
        attempt = 0
        while True:
            try:
                metadata = await client.metadata()
                call = client.stream(KEEPALIVE_PATH, pb.LeaseKeepAliveResponse)(metadata=metadata)
                try:
                    while True:
                        lease = self._lease
                        # a member that does not answer within the interval is given up
                        # on: waiting longer could let the lease expire
                        async with asyncio.timeout(interval):
                            await call.write(pb.LeaseKeepAliveRequest(ID=lease))
                            response = await call.read()
                        if response is STREAM_END:
                            raise EtcdUnavailable(f"etcd at {client.endpoint} ended keep-alives")
                        attempt = 0
                        if response.TTL <= 0:
                            async with self._lock:
                                if self._lease == lease:
                                    await self._renew(client)
                            continue
                        await asyncio.sleep(interval)
                finally:
                    call.cancel()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, EtcdUnavailable, grpc.aio.AioRpcError) as exc:
                log.warning(
                    "keeping lease %x alive on %s failed: %s", self._lease, client.endpoint, exc
                )
                with contextlib.suppress(Exception):
                    await client.failover()
                await sleep_backoff(attempt)
                attempt += 1
            except Exception:
                log.exception("keeping lease %x alive failed", self._lease)
                await sleep_backoff(attempt)
                attempt += 1

    def __repr__(self) -> str:
        state = f"lease {self._lease:x}" if self.entered else "idle"
        return f"EtcdPublisher({self.settings.namespace!r}, {state}, {len(self._records)} workers)"
