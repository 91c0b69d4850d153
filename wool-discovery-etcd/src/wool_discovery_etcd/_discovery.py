"""EtcdDiscovery: a publisher and subscriber on an etcd cluster, together."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import Any

from wool_discovery_etcd._publisher import EtcdPublisher
from wool_discovery_etcd._settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_NAMESPACE,
    DEFAULT_TTL,
    EtcdSettings,
    settings,
)
from wool_discovery_etcd._subscriber import EtcdSubscriber


class EtcdDiscovery:
    """Discovery of workers through an etcd v3 cluster (leases and watches).

    Workers of ``namespace`` are stored under the keys ``/wool/<namespace>/workers/``,
    each attached to the lease of the publisher that put it; the publisher keeps its
    lease alive, so a worker whose publisher dies disappears ``ttl`` seconds later
    (default 5), and one withdrawn cleanly disappears at once. Subscribers list the
    namespace and then watch it.

    ``endpoints`` are the client URLs of the cluster's members (a list, or a
    comma-separated string), tried in turn when one fails; when ``None``,
    ``WOOL_ETCD_ENDPOINTS`` is read, else ``http://127.0.0.1:2379``. ``https://``
    endpoints use TLS: ``ca_file`` verifies the members (default: the system's roots)
    and ``cert_file`` with ``key_file`` is the client certificate. ``username`` and
    ``password_file`` (a file holding the password, so that no secret travels with
    tasks) log in to a cluster with authentication enabled; when ``username`` is
    ``None`` they come from ``WOOL_ETCD_USERNAME`` and ``WOOL_ETCD_PASSWORD_FILE``.
    ``connect_timeout`` bounds the first connection of a publisher or subscriber.
    Environment variables are read when the discovery is made.
    """

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        endpoints: Iterable[str] | str | None = None,
        ttl: int = DEFAULT_TTL,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        username: str | None = None,
        password_file: str | os.PathLike[str] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self._settings = settings(
            namespace,
            endpoints,
            ttl=ttl,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            username=username,
            password_file=password_file,
            connect_timeout=connect_timeout,
        )
        self._publisher: EtcdPublisher | None = None

    @classmethod
    def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
        """The ``wool worker --discovery etcd`` options."""
        group.add_argument(
            "--etcd-endpoints",
            metavar="URLS",
            default=None,
            help="comma-separated client URLs of the etcd members "
            "(default: $WOOL_ETCD_ENDPOINTS, else http://127.0.0.1:2379)",
        )
        group.add_argument(
            "--etcd-ttl",
            type=int,
            default=None,
            metavar="SECONDS",
            help=f"lease TTL of the published workers (default {DEFAULT_TTL})",
        )
        group.add_argument("--etcd-ca", metavar="FILE", default=None, help="CA of the members")
        group.add_argument("--etcd-cert", metavar="FILE", default=None, help="client certificate")
        group.add_argument("--etcd-key", metavar="FILE", default=None, help="client key")
        group.add_argument(
            "--etcd-user", metavar="NAME", default=None, help="etcd user (or $WOOL_ETCD_USERNAME)"
        )
        group.add_argument(
            "--etcd-password-file",
            metavar="FILE",
            default=None,
            help="file holding the etcd user's password (or $WOOL_ETCD_PASSWORD_FILE)",
        )

    @classmethod
    def from_cli(cls, namespace: str, options: argparse.Namespace) -> EtcdDiscovery:
        """The discovery ``wool worker --discovery etcd`` asks for."""
        ttl = getattr(options, "etcd_ttl", None)
        return cls(
            namespace,
            endpoints=getattr(options, "etcd_endpoints", None),
            ttl=DEFAULT_TTL if ttl is None else ttl,
            ca_file=getattr(options, "etcd_ca", None),
            cert_file=getattr(options, "etcd_cert", None),
            key_file=getattr(options, "etcd_key", None),
            username=getattr(options, "etcd_user", None),
            password_file=getattr(options, "etcd_password_file", None),
        )

    @property
    def settings(self) -> EtcdSettings:
        """The resolved settings (endpoints, TLS files, user, TTL)."""
        return self._settings

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._settings.namespace

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The members' client URLs, in the order they are tried."""
        return tuple(str(e) for e in self._settings.endpoints)

    @property
    def ttl(self) -> int:
        """The lease TTL of published workers, in seconds."""
        return self._settings.ttl

    @property
    def publisher(self) -> EtcdPublisher:
        """This discovery's publisher (the same object every time)."""
        if self._publisher is None:
            self._publisher = EtcdPublisher(self._settings)
        return self._publisher

    @property
    def subscriber(self) -> EtcdSubscriber:
        """A subscriber to this namespace; picklable, it connects when iterated."""
        return EtcdSubscriber(self._settings)

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self._settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._settings = state["settings"]
        self._publisher = None

    def __repr__(self) -> str:
        return (
            f"EtcdDiscovery({self.namespace!r}, endpoints={list(self.endpoints)!r}, ttl={self.ttl})"
        )
