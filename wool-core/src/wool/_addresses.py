"""The rules about worker addresses, each written once: formatting, wildcards, loopback."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wool._credentials import WorkerCredentials

LOOPBACK = "127.0.0.1"
"""Where workers that publish through a network discovery listen when given no host."""

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
"""Hosts that mean "every interface": nobody can dial them."""


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_host(host: str | None, advertise: str | None) -> str:
    """The host callers dial: ``advertise``, else ``host`` unless it is a wildcard.

    Raises ``ValueError`` for a wildcard ``host`` without ``advertise``, and for
    ``advertise`` without ``host`` (a worker without one is on a unix socket, whose
    address it publishes itself; then the result is ``""``).
    """
    if host is None:
        if advertise:
            raise ValueError(
                "advertise needs a host: without one, workers listen on unix sockets "
                "(whose addresses they publish themselves); give host= (wool worker --host)"
            )
        return ""
    if advertise:
        return advertise
    if host in WILDCARDS:
        raise ValueError(
            f"workers bound to {host or 'all interfaces'!r} listen on every interface, so "
            "callers must be told where to connect: give an address of this host that they "
            "can reach (advertise='198.18.0.2', or wool worker --advertise 198.18.0.2)"
        )
    return host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str | None, tls: str | None, insecure: bool) -> None:
    """Refuse a listener that unauthenticated callers could reach from other hosts.

    ``tls`` is ``"mutual"``, ``"one-way"`` or ``None``. Raises ``ValueError`` for a
    ``host`` other than loopback without mutual TLS, unless ``insecure`` says the user
    accepts that anyone reaching it can run code. ``None`` (a unix socket of this user)
    and loopback pass.
    """
    if host is None or insecure or tls == "mutual" or is_loopback(host):
        return
    how = "without TLS credentials" if tls is None else "with one-way TLS only"
    raise ValueError(
        f"refusing to listen on {host or 'all interfaces'!r} {how}: anyone who "
        "can reach that address could run any code as this user. Use mutual TLS "
        "(wool.WorkerCredentials(..., mutual=True); --ca/--cert/--key), or accept the risk "
        "explicitly with insecure=True (wool worker --insecure)"
    )


def tls_of(credentials: WorkerCredentials | None) -> str | None:
    """What :func:`check_exposure` calls the TLS of ``credentials``."""
    if credentials is None:
        return None
    return "mutual" if credentials.mutual else "one-way"
