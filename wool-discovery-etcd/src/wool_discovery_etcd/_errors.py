"""The errors of wool-discovery-etcd: each names the cluster and the fix."""

from __future__ import annotations


class EtcdDiscoveryError(Exception):
    """Base of the errors this package raises about the etcd cluster."""


class EtcdUnavailable(EtcdDiscoveryError):
    """No endpoint of the cluster answered (down, unreachable, or without a leader)."""


class EtcdAuthError(EtcdDiscoveryError):
    """etcd refused the credentials: wrong user or password, or missing permissions."""


class IncompatibleNamespace(EtcdDiscoveryError):
    """The namespace holds records of a format this wool does not read."""
