"""The version of this distribution, as its metadata says."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("wool-opentelemetry")
except PackageNotFoundError:  # run from a source tree
    VERSION = "0"
