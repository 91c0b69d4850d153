"""The public API for plugin distributions (discovery backends, load balancers).

Plugin distributions import only ``wool``, ``wool.testing`` and this module, never a
``wool._`` module. Here: the per-user private directory where local plugins keep their
files, and opening files in it safely.
"""

from __future__ import annotations

from wool._private_files import (
    DIRECTORY_VARIABLE,
    check_private_directory,
    open_private,
    private_directory,
)

__all__ = [
    "DIRECTORY_VARIABLE",
    "check_private_directory",
    "open_private",
    "private_directory",
]
