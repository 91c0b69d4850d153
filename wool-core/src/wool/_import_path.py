"""Where worker processes import code from: the working directory goes last, never first.

A directory early on ``sys.path`` shadows installed packages: a module planted there
(``wool_lb_roundrobin/__init__.py``, ``grpc/__init__.py``) would run instead of the real
one. So the working directory is appended, after every installed package, and a worker
process takes its parent's ``sys.path`` in the parent's order.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Sequence

log = logging.getLogger("wool.worker")


def append_working_directory() -> str:
    """Move the working directory to the end of ``sys.path`` (adding it if missing).

    ``python -m`` and ``python -c`` put it first (as the full path or as ``""``); here it
    only serves modules that no installed package provides. Returns the directory.
    """
    cwd = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", cwd)]
    sys.path.append(cwd)
    return cwd


def writable_by_others(directory: str) -> bool:
    """Whether users other than the owner may create files in ``directory``."""
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def adopt(entries: Sequence[str]) -> None:
    """Make ``sys.path`` start with ``entries``, in their order (a worker takes its parent's)."""
    wanted = [entry for entry in entries if entry]
    sys.path[:] = wanted + [entry for entry in sys.path if entry not in wanted]
