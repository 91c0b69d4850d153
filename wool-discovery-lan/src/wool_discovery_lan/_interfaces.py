"""Which network interfaces zeroconf uses: ``interfaces=``, ``WOOL_LAN_INTERFACES``, or all."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Iterable

import ifaddr
from zeroconf import InterfaceChoice

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "WOOL_LAN_INTERFACES"
"""Comma-separated IPv4 addresses or interface names, used when ``interfaces`` is not given."""

_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


def normalize(interfaces: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """Validate an interface choice: IPv4 addresses and interface names, or ``None`` for all.

    A string is split on commas, so ``"lo,198.18.0.1"`` and ``["lo", "198.18.0.1"]`` mean
    the same. Raises ``ValueError`` for an IPv6 address, an empty choice or a malformed
    name, and ``TypeError`` for anything that is not a string.
    """
    if interfaces is None:
        return None
    items = interfaces.split(",") if isinstance(interfaces, str) else list(interfaces)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"interfaces must be strings, got {item!r}")
        item = item.strip()
        if not item:
            continue
        if _ip_version(item) == 6:
            raise ValueError(f"LanDiscovery uses IPv4 only; {item!r} is an IPv6 address")
        if _ip_version(item) is None and not _NAME.fullmatch(item):
            raise ValueError(f"{item!r} is neither an IPv4 address nor an interface name")
        if item not in result:
            result.append(item)
    if not result:
        raise ValueError("interfaces names no interface; pass None to use all of them")
    return tuple(result)


def from_environment() -> tuple[str, ...] | None:
    """The choice in ``WOOL_LAN_INTERFACES``, or ``None`` when it is unset or empty."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return None
    try:
        return normalize(value)
    except ValueError as exc:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={value!r}: {exc}") from None


def resolve(interfaces: tuple[str, ...] | None) -> list[str] | InterfaceChoice:
    """The IPv4 addresses of this host that zeroconf should bind, for a configured choice.

    ``interfaces`` wins when any of it exists on this host; otherwise
    ``WOOL_LAN_INTERFACES`` does; otherwise every IPv4 interface is used. A choice that
    names nothing on this host is skipped (logged; as a warning when it leads to every
    interface): a subscriber configured on one host may be iterated on another (it
    travels with tasks for nested dispatch).
    """
    adapters = list(ifaddr.get_adapters())
    missing: list[str] = []
    for source, choice in (("interfaces=", interfaces), (ENVIRONMENT_VARIABLE, from_environment())):
        if choice is None:
            continue
        addresses = _addresses(choice, adapters)
        if addresses:
            if missing:  # expected for a subscriber that travelled: the host's own choice
                log.info("%s: not on this host; using %s", "; ".join(missing), source)
            return addresses
        missing.append(f"{source} {','.join(choice)}")
    if missing:
        log.warning("%s: not on this host; using every IPv4 interface", "; ".join(missing))
    return InterfaceChoice.All


def _addresses(choice: tuple[str, ...], adapters: Iterable[ifaddr.Adapter]) -> list[str]:
    by_name = {a.nice_name: [str(ip.ip) for ip in a.ips if ip.is_IPv4] for a in adapters}
    present = {address for addresses in by_name.values() for address in addresses}
    result: list[str] = []
    for item in choice:
        if _ip_version(item) == 4:
            found = [item] if item in present else []
        else:
            found = by_name.get(item, [])
        if not found:
            log.debug("interface %r has no IPv4 address on this host", item)
        result += [address for address in found if address not in result]
    return result


def _ip_version(value: str) -> int | None:
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None
