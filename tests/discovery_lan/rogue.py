"""A rogue host on a test bridge: reads wool's records like any host, and sends forged
multicast DNS answers, from its own address or one it spoofs."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterable

from zeroconf import DNSOutgoing, DNSRecord, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from tests.support import netns

MDNS = ("224.0.0.251", 5353)
_RESPONSE = 0x8400  # QR and AA: an authoritative answer
_UNIQUE = 0x8000  # the cache-flush bit


class Rogue:
    """Sends hand-built mDNS responses on the bridge from ``source``."""

    def __init__(self, host: netns.Host, zeroconf: AsyncZeroconf) -> None:
        self.host = host
        self.zeroconf = zeroconf

    async def service(self, service_type: str, instance: str) -> AsyncServiceInfo:
        """The records the real owner of ``instance`` answers with, as any host reads them."""
        info = AsyncServiceInfo(service_type, f"{instance}.{service_type}")
        assert await info.async_request(self.zeroconf.zeroconf, 5000), f"{instance} not found"
        return info

    def send(self, records: Iterable[DNSRecord], source: str | None = None) -> None:
        """Multicast ``records`` in one response, from ``source`` (this host's address, or
        another it spoofs: added to its interface for the moment)."""
        out = DNSOutgoing(_RESPONSE, multicast=True)
        for record in records:
            out.add_answer_at_time(record, 0)
        address = source or self.host.address
        spoofed = address != self.host.address
        with self.host.namespace.entered():
            if spoofed:
                self.host.namespace.ip("addr", "add", f"{address}/32", "dev", "eth0")
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
                    sock.bind((address, MDNS[1]))
                    for packet in out.packets():
                        sock.sendto(packet, MDNS)
            finally:
                if spoofed:
                    self.host.namespace.ip("addr", "del", f"{address}/32", "dev", "eth0")


@contextlib.asynccontextmanager
async def rogue(host: netns.Host) -> AsyncIterator[Rogue]:
    """A rogue on ``host``; its zeroconf (for reading records) lives in that namespace."""
    with host.namespace.entered():
        zeroconf = AsyncZeroconf(interfaces=[host.address], ip_version=IPVersion.V4Only)
    try:
        yield Rogue(host, zeroconf)
    finally:
        await zeroconf.async_close()
