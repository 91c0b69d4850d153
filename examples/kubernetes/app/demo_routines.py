"""Routines of the Kubernetes example; worker pods and the caller import them by name."""

from __future__ import annotations

import os

import wool


@wool.routine
async def square(n: int) -> tuple[str, int]:
    """``n * n``, and the pod that computed it (its Downward API name)."""
    return os.environ.get("WOOL_POD_NAME", "?"), n * n
