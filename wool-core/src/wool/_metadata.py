"""The records that discovery and load balancers exchange with the core."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

DiscoveryEventType = Literal["worker-added", "worker-updated", "worker-dropped"]
EVENT_TYPES: tuple[DiscoveryEventType, ...] = ("worker-added", "worker-updated", "worker-dropped")
UNIX_PREFIX = "unix:"


def _tags(value: str | Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


@attrs.frozen
class WorkerMetadata:
    """How to reach a worker and what it offers.

    ``uid`` identifies the worker for its lifetime; ``address`` is ``host:port`` as a
    caller should dial it, or ``unix:/path`` for a worker on a unix socket of this host
    (reachable by its own user only); ``secure`` says the worker serves TLS (a hint:
    trust comes from the handshake only).
    """

    uid: str
    address: str
    pid: int
    version: str
    tags: frozenset[str] = attrs.field(factory=frozenset[str], converter=_tags)
    secure: bool = False

    @property
    def host(self) -> str:
        """The host part of ``address`` (without IPv6 brackets); empty for a unix socket."""
        if self.address.startswith(UNIX_PREFIX):
            return ""
        host, _, _ = self.address.rpartition(":")
        return host.strip("[]")

    @property
    def port(self) -> int:
        """The port part of ``address``; 0 for a unix socket."""
        if self.address.startswith(UNIX_PREFIX):
            return 0
        return int(self.address.rpartition(":")[2])

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form, with tags sorted."""
        return {
            "uid": self.uid,
            "address": self.address,
            "pid": self.pid,
            "version": self.version,
            "tags": sorted(self.tags),
            "secure": self.secure,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> WorkerMetadata:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on a malformed record."""
        try:
            return cls(
                uid=str(data["uid"]),
                address=str(data["address"]),
                pid=int(data["pid"]),  # type: ignore[call-overload]
                version=str(data["version"]),
                tags=frozenset(str(t) for t in data.get("tags", ())),  # type: ignore[union-attr]
                secure=bool(data.get("secure", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed worker record {data!r}: {exc}") from exc


@attrs.frozen
class DiscoveryEvent:
    """A worker lifecycle event: ``worker-added``, ``worker-updated`` or ``worker-dropped``."""

    type: DiscoveryEventType = attrs.field(validator=attrs.validators.in_(EVENT_TYPES))
    metadata: WorkerMetadata
