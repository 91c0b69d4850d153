"""LanDiscovery: a publisher and subscriber over Zeroconf DNS-SD, together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wool_discovery_lan import _interfaces
from wool_discovery_lan._publisher import LanPublisher
from wool_discovery_lan._records import validate_service_type
from wool_discovery_lan._subscriber import DEFAULT_SERVICE_TYPE, LanSubscriber

MIN_TTL = 2
"""Responders multicast a record at most once a second, so refreshes need this margin."""
DEFAULT_TTL = 60
"""Seconds the published records live; a worker that vanishes without a goodbye is
dropped by subscribers at most this long after its last answer."""


class LanDiscovery:
    """Discovery of workers across a LAN through Zeroconf DNS-SD (multicast DNS).

    Each published worker is a service instance of ``service_type``
    (``_wool._tcp.local.`` by default) whose TXT record carries its metadata; any host
    on the same link that browses that type finds it, with nothing central to run.

    ``interfaces`` pins zeroconf to network interfaces, given as IPv4 addresses or
    interface names (a list, or a comma-separated string). When it is ``None`` the
    ``WOOL_LAN_INTERFACES`` environment variable (comma-separated) is used, and when
    that is unset, every IPv4 interface. Interfaces are resolved where the publisher is
    entered or the subscriber iterated; a choice that names nothing on that host is
    skipped (a subscriber travels with tasks and may be iterated on another host), and
    the next one used.

    ``ttl`` is the lifetime in seconds of the published records: subscribers query a
    known worker again before its records expire and drop it when it stops answering
    (2 seconds or more; the default is 60).
    """

    def __init__(
        self,
        interfaces: Iterable[str] | str | None = None,
        *,
        service_type: str = DEFAULT_SERVICE_TYPE,
        ttl: int = DEFAULT_TTL,
    ) -> None:
        self._interfaces = _interfaces.normalize(interfaces)
        validate_service_type(service_type)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < MIN_TTL:
            raise ValueError(f"ttl must be a whole number of seconds >= {MIN_TTL}, got {ttl!r}")
        self._service_type = service_type
        self._ttl = ttl
        self._publisher: LanPublisher | None = None

    @property
    def interfaces(self) -> tuple[str, ...] | None:
        """The configured interfaces (``None``: ``WOOL_LAN_INTERFACES``, else all)."""
        return self._interfaces

    @property
    def service_type(self) -> str:
        """The DNS-SD service type browsed and published."""
        return self._service_type

    @property
    def ttl(self) -> int:
        """The lifetime in seconds of the records this discovery publishes."""
        return self._ttl

    @property
    def publisher(self) -> LanPublisher:
        """This discovery's publisher (the same object every time)."""
        if self._publisher is None:
            self._publisher = LanPublisher(self._service_type, self._interfaces, self._ttl)
        return self._publisher

    @property
    def subscriber(self) -> LanSubscriber:
        """A subscriber to this discovery's service type; picklable."""
        return LanSubscriber(self._service_type, self._interfaces)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "interfaces": self._interfaces,
            "service_type": self._service_type,
            "ttl": self._ttl,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["interfaces"], service_type=state["service_type"], ttl=state["ttl"]
        )

    def __repr__(self) -> str:
        return (
            f"LanDiscovery({self._interfaces!r}, service_type={self._service_type!r}, "
            f"ttl={self._ttl})"
        )
