"""The open-file limit of a worker process."""

from __future__ import annotations

import logging

log = logging.getLogger("wool.worker")

UNLIMITED_TARGET = 1 << 20
"""Soft limit to ask for when the hard limit is unlimited (macOS refuses RLIM_INFINITY)."""


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now.

    Each connection costs a worker a file descriptor; the usual soft limit of 1,024 is
    used up by that many idle connections, after which legitimate callers are refused.
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.info("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
            return soft
        return target
    return soft
