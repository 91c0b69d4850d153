"""The rules about worker addresses, each written once: formatting, wildcards, loopback."""

from __future__ import annotations

import ipaddress

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
"""Hosts that mean "every interface": nobody can dial them."""


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_host(host: str, advertise: str | None) -> str:
    """The host callers dial: ``advertise``, else ``host`` unless it is a wildcard.

    Raises ``ValueError`` for a wildcard ``host`` without ``advertise``.
    """
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
